"""kill -9 at each phase of a level write and of a dataset chunk; every store refuses to load as
complete until resumed, and the resumed store is bit-identical to an uninterrupted one.

:func:`install` patches the store's functions so that a write dies at a named phase (product
code has no fault hooks). In-process, "dying" raises :class:`Killed` (a BaseException nothing
catches); the phases are chained (killed at level 1 mid-write, resumed and killed at level 2
before its seal, ...) so that one run covers each phase quickly. A real process that SIGKILLs
itself checks the most delicate phase of each store kind the honest way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from mothlab import store

ROOT = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """What an in-process run raises at its phase instead of SIGKILL (not an Exception: nothing
    catches it on the way out, like a kill)."""


def install(kind: str, out, phase: str, at: int, die, patch) -> None:
    """Make the next write of a ``kind`` store at ``out`` call ``die()`` at ``phase`` of unit
    ``at`` (a level or a dataset chunk; -1 for the completion). ``patch(obj, name, value)``
    replaces an attribute (setattr in a process of its own, monkeypatch.setattr in-process).

    Phases: ``mid_write`` (two arrays of the unit written, the rest not), ``before_seal`` (all
    written, the header not), ``before_clean_up`` (sealed, the clean-up recorded but not done),
    ``mid_clean_up`` (one file of it deleted), ``before_complete`` (every level, no mark)."""
    field = "levels_done" if kind == "experiment" else "chunks_done"
    update, finish, complete = store.update_header, store.finish_pending, store.mark_complete
    rmtree, setitem = store.shutil.rmtree, zarr.Array.__setitem__
    writes = [0]

    def update_header(group, **fields):  # the unit's one header write (its seal)
        if phase == "before_seal" and fields.get(field) == at + 1:
            die()
        return update(group, **fields)

    def sealed() -> bool:  # unit ``at`` is sealed: its clean-up is what comes next
        # read as a file: this may run inside zarr's event loop, where zarr's sync API cannot
        meta = json.loads((Path(out) / "zarr.json").read_text())
        return meta["attributes"]["mothlab"].get(field) == at + 1

    def finish_pending(group):  # after the seal, before the clean-up
        if (
            phase == "before_clean_up"
            and sealed()
            and store.read_header(group).get("pending_deletions")
        ):
            die()
        return finish(group)

    def partial_rmtree(path, *a, **k):  # during the clean-up: one file gone, then killed
        if phase == "mid_clean_up" and Path(path).name == "opt" and sealed():
            files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
            os.unlink(files[0])
            die()
        return rmtree(path, *a, **k)

    def mark_complete(group, **k):
        if phase == "before_complete":
            die()
        return complete(group, **k)

    def counting_setitem(self, key, value):  # in the middle of the unit's array writes
        setitem(self, key, value)
        if (
            phase == "mid_write"
            and store.read_header(zarr.open_group(str(out), mode="r")).get(field) == at
        ):
            writes[0] += 1
            if writes[0] == 2:
                die()

    patch(store, "update_header", update_header)
    patch(store, "finish_pending", finish_pending)
    patch(store.shutil, "rmtree", partial_rmtree)
    patch(store, "mark_complete", mark_complete)
    patch(zarr.Array, "__setitem__", counting_setitem)


def run_store(kind: str, out) -> str:
    """Write (or resume) the small store of ``kind`` at ``out``; return a one-word summary."""
    if kind == "experiment":
        from mothlab.nets import ExperimentConfig, run_experiment

        rng = np.random.default_rng(0)
        data = {
            k: (rng.uniform(-1, 1, (m, 10)), rng.uniform(-1, 1, (m, 7)))
            for k, m in (("train", 256), ("val", 64), ("test", 64))
        }
        cfg = ExperimentConfig.preset(
            "tiny",
            n_networks=2,
            widths=[6, 6],
            schedule=[0.0, 0.3, 0.5, 0.7, 0.9],
            max_steps_per_level=40,
            batch_size=32,
        )
        return f"complete {run_experiment(cfg, out, data=data).complete}"
    from mothlab.data import generate_dataset

    return f"complete {generate_dataset(out, 12, seed=3, chunk=4).n}"


def main(argv) -> None:
    """The process that kills itself: ``main([kind, out, phase, at])``."""
    kind, out, phase, at = argv[0], argv[1], argv[2], int(argv[3])

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    install(kind, out, phase, at, die, setattr)
    print(run_store(kind, out))


def _run_killed(tmp_path, kind, out, phase, at):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location("
        f"'faults', {__file__!r}); m = importlib.util.module_from_spec(spec); "
        "spec.loader.exec_module(m); m.main(sys.argv[1:])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, kind, str(out), phase, str(at)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _run_in_process(monkeypatch, kind, out, phase, at):
    def die():
        raise Killed(phase)

    with monkeypatch.context() as m:
        install(kind, out, phase, at, die, m.setattr)
        with pytest.raises(Killed):
            run_store(kind, out)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(path), mode="r")
    return {name: np.asarray(a[...]) for name, a in g.arrays()} | {
        f"{gname}/{name}": np.asarray(a[...]) for gname, sub in g.groups() for name, a in _walk(sub)
    }


def _walk(group, prefix=""):
    for name, a in group.arrays():
        yield f"{prefix}{name}", a
    for name, sub in group.groups():
        yield from _walk(sub, f"{prefix}{name}/")


def _assert_identical(a: Path, b: Path) -> int:
    x, y = _arrays(a), _arrays(b)
    assert sorted(x) == sorted(y)
    for k in x:
        assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
        assert np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f"), k
    return len(x)


def _assert_not_complete_and_whole(path: Path, kind: str) -> dict:
    group, header = store.open_store(path, kind, mode="r")  # sealed units all whole
    assert not store.is_complete(group)
    return header


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted stores of both kinds (in-process: what every resume must equal)."""
    tmp = tmp_path_factory.mktemp("ref")
    assert run_store("experiment", tmp / "e.zarr") == "complete True"
    assert run_store("dataset", tmp / "d.zarr") == "complete 12"
    return tmp


# (phase, level): chained, each resume continues from the previous kill
EXPERIMENT_PHASES = [
    ("mid_write", 1),
    ("before_seal", 2),
    ("before_clean_up", 3),
    ("mid_clean_up", 4),
    ("before_complete", -1),
]
DATASET_PHASES = [("mid_write", 1), ("before_seal", 2), ("before_complete", -1)]


def _check_killed(out: Path, kind: str, phase: str, at: int) -> None:
    """After a kill: sealed units whole, not complete, progress where the phase says."""
    group, header = store.open_store(out, kind, mode="r")  # every sealed unit is whole
    assert not store.is_complete(group)
    field = "levels_done" if kind == "experiment" else "chunks_done"
    if phase in ("mid_write", "before_seal"):
        assert header[field] == at  # the unit being written does not count
    if phase in ("before_clean_up", "mid_clean_up"):
        # the level is sealed and its clean-up recorded: the next writable open finishes it
        assert header[field] == at + 1
        assert header["pending_deletions"] == [f"levels/{at - 1}/opt"]
        assert (out / f"levels/{at - 1}/opt").exists()
    if kind == "experiment":
        from mothlab.nets import load_experiment

        assert not load_experiment(out).complete
    else:
        from mothlab.data import open_dataset

        with pytest.raises(ValueError, match="incomplete"):
            open_dataset(out)


def _check_resumed(out: Path, ref: Path, kind: str) -> None:
    _, header = store.open_store(out, kind, mode="r")
    assert header["complete"] and header.get("pending_deletions", []) == []
    if kind == "experiment":
        # nothing orphaned: no optimizer state is left in a complete experiment
        assert not list(out.glob("levels/*/opt"))
    assert _assert_identical(out, ref) >= (20 if kind == "experiment" else 3)


@pytest.mark.parametrize(
    "kind, phases", [("experiment", EXPERIMENT_PHASES), ("dataset", DATASET_PHASES)]
)
def test_killed_at_every_phase_refuses_to_load_and_resumes_bit_identically(
    kind, phases, tmp_path, reference, monkeypatch
):
    out = tmp_path / f"{kind}.zarr"
    for phase, at in phases:
        _run_in_process(monkeypatch, kind, out, phase, at)
        _check_killed(out, kind, phase, at)
    assert run_store(kind, out).startswith("complete")
    _check_resumed(out, reference / ("e.zarr" if kind == "experiment" else "d.zarr"), kind)


@pytest.mark.parametrize(
    "kind, phase, at", [("experiment", "mid_clean_up", 2), ("dataset", "mid_write", 1)]
)
def test_kill_9_of_a_real_process(kind, phase, at, tmp_path, reference):
    """The same with a real SIGKILL (no unwinding at all), at the most delicate phase."""
    out = tmp_path / f"{kind}.zarr"
    r = _run_killed(tmp_path, kind, out, phase, at)
    assert r.returncode == -signal.SIGKILL, (r.stdout, r.stderr[-3000:])
    _check_killed(out, kind, phase, at)
    assert run_store(kind, out).startswith("complete")
    _check_resumed(out, reference / ("e.zarr" if kind == "experiment" else "d.zarr"), kind)


def test_ctrl_c_stops_at_a_chunk_boundary_and_exits_130(tmp_path):
    """SIGINT to a real `mothlab dataset`: it finishes the chunk in hand, leaves a resumable
    store and exits 130 (no traceback, no segfault at exit)."""
    out = tmp_path / "d.zarr"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mothlab",
            "dataset",
            "--n",
            "400000",
            "--chunk",
            "2000",
            "--out",
            str(out),
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        import time

        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:  # wait for the first stored chunk
            try:
                meta = json.loads((out / "zarr.json").read_text())
                if meta["attributes"]["mothlab"].get("chunks_done", 0) >= 1:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "stopping at the next chunk boundary" in err and "interrupted" in err
    assert "Traceback" not in err
    group, header = store.open_store(out, "dataset", mode="r")
    assert not store.is_complete(group) and 1 <= header["chunks_done"] < 200
