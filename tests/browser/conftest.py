"""Browser-test fixtures: Debian's chromium under Playwright, a page that records every request and
console error, a real JupyterLab, and where screenshots go (never into the tracked tree)."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ARGS, CHROMIUM, ROOT, free_port


def pytest_collection_modifyitems(items):
    skip = pytest.mark.skip(
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium)"
    )
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api  # the test extra: a missing one fails, never skips

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Screenshot folder: ``$MOTHLAB_SCREENSHOTS`` (``make-screenshots`` points it at
    assets/screenshots) or a pytest temporary folder: a test run never rewrites tracked files."""
    target = os.environ.get("MOTHLAB_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory, tiny_experiment):
    """A real JupyterLab (``jupyter lab --no-browser``) on 127.0.0.1 with a token, a private
    configuration (no news, no extension manager calling PyPI) and a root folder holding a copy
    of app/mothlab.ipynb and an experiments folder with the tiny experiment.
    Yields ``(base_url, token, root)``."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "app" / "mothlab.ipynb", root / "mothlab.ipynb")
    # a home-like folder: the page header shows ~/mothlab-experiments, as a user's default does
    home = root / "home"
    exp_dir = home / "mothlab-experiments"
    exp_dir.mkdir(parents=True)
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    token, port = "mothlab-test", free_port()
    from mothlab.runtime import compile_cache_dir

    env = dict(
        os.environ,
        HOME=str(home),
        MOTHLAB_JAX_CACHE=str(compile_cache_dir()),  # the real compile cache, not the new home's
        MOTHLAB_EXPERIMENTS=str(exp_dir),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),
    )
    log = open(root / "lab.log", "w")
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=10) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(
                "jupyter lab did not start:\n" + (root / "lab.log").read_text()[-3000:]
            )
        time.sleep(0.5)
    try:
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
