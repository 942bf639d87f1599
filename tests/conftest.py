"""Shared fixtures (kept small): a real tiny experiment trained on synthetic in-memory data, and
environment for app tests (experiments folder, JAX compile cache shared with served apps)."""

import os
from pathlib import Path

import pytest
from synthetic import synthetic_splits

from mothlab.runtime import enable_compile_cache

# one on-disk compile cache for the test process and any `panel serve` it starts: the simulator
# and the tiny training compile once per machine, not once per process
os.environ.setdefault("MOTHLAB_JAX_CACHE", str(Path.home() / ".cache" / "mothlab" / "jax-tests"))
enable_compile_cache()


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """Path of a complete experiment made by the real runner with the "tiny" preset
    (4 networks of 10-8-8-7, three sparsity levels) on synthetic data."""
    from mothlab.nets import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("experiments") / "tiny.zarr"
    run_experiment(ExperimentConfig.preset("tiny"), out, data=synthetic_splits())
    return out


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served_app(tmp_path_factory, tiny_experiment):
    """``panel serve app`` as a subprocess (one per test session, never --num-procs), with an
    experiments folder holding a copy of the tiny experiment. Yields the app's URL."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    root = Path(__file__).resolve().parents[1]
    from mothlab.runtime import compile_cache_dir

    # a home of its own, so the page (and the README's screenshots) show the folder a user's
    # default is, ~/mothlab-experiments; the server keeps the real compile caches
    home = tmp_path_factory.mktemp("home")
    exp_dir = home / "mothlab-experiments"
    exp_dir.mkdir()
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    port = _free_port()
    env = dict(
        os.environ,
        HOME=str(home),
        MOTHLAB_JAX_CACHE=str(compile_cache_dir()),
        MOTHLAB_EXPERIMENTS=str(exp_dir),
        BOKEH_RESOURCES="server",
    )
    log = open(exp_dir / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "panel",
            "serve",
            "app",
            "--port",
            str(port),
            "--address",
            "127.0.0.1",
            "--allow-websocket-origin",
            f"127.0.0.1:{port}",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/app"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(
                "panel serve app did not start:\n" + (exp_dir / "server.log").read_text()[-3000:]
            )
        time.sleep(0.5)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
