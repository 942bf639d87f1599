"""Bad input through the CLI: one table of cases, each with the error text and the exit code.

Every case of issue 14 whose fix has landed, plus the ones handled before it, so they stay
handled: damaged, foreign and corrupt stores, writes into the shipped assets, simulate's
extremes and malformed CSV files, I/O failures (disk full, a directory where a file is expected,
a missing folder), dataset and motif bounds, and the error boundary itself (unexpected errors,
--debug, Ctrl-C). Cases run in-process through ``mothlab.cli.main`` (fast: no interpreter start);
damaged stores are copies of the embedded experiment (sealed), so nothing is trained here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import zarr

from mothlab import store
from mothlab.cli import main
from mothlab.moth import CONTROL_NAMES, STATE_NAMES

ASSET = store.assets_path() / "default_experiment.zarr"
HEADER = ",".join(STATE_NAMES + CONTROL_NAMES)
ROW = "0,100,0,0,0.8,0,3.9,0,3000,1.2,0"


# ---------------------------------------------------------------------------- damage makers
def _copy(tmp_path) -> Path:
    path = tmp_path / "e.zarr"
    shutil.copytree(ASSET, path)
    return path


def _flip(f: Path, byte: int | None = None) -> None:
    b = bytearray(f.read_bytes())
    b[len(b) // 2 if byte is None else byte] ^= 0x01
    f.write_bytes(bytes(b))


def _edit_header(path: Path, fn) -> None:
    g = zarr.open_group(str(path), mode="r+")
    h = dict(g.attrs["mothlab"])
    fn(h)
    g.attrs["mothlab"] = h


def _first_chunk(path: Path, array: str) -> Path:
    return next(p for p in sorted((path / array / "c").rglob("*")) if p.is_file())


def damaged(kind):
    """A setup that copies the embedded experiment and damages it; returns its path."""

    def setup(tmp_path):
        path = _copy(tmp_path)
        if kind == "missing_chunk":
            (path / "levels/1/mw0/c/0/0/0").unlink()
        elif kind == "missing_loss_chunk":
            _first_chunk(path, "test_loss").unlink()
        elif kind == "truncated":
            f = path / "levels/2/w1/c/0/0/0"
            f.write_bytes(f.read_bytes()[:-7])
        elif kind == "garbage":
            f = path / "levels/2/w1/c/0/0/0"
            f.write_bytes(os.urandom(f.stat().st_size))
        elif kind == "bit_flip":
            _flip(path / "levels/5/w2/c/0/0/0")
        elif kind == "bit_flip_loss":
            _flip(_first_chunk(path, "val_loss"))
        elif kind == "level_group":
            shutil.rmtree(path / "levels/3")
        elif kind == "array_meta":
            meta = path / "levels/0/w0/zarr.json"
            meta.write_text(meta.read_text().replace('"fill_value": 0.0', '"fill_value": 1.0'))
        elif kind == "motif_chunk":
            _flip(path / "motifs/edges_live_nodes/z/c/3/0/0")
        elif kind == "header_garbage":
            (path / "zarr.json").write_bytes(b"\x00not json")
        elif kind == "newer_schema":
            _edit_header(path, lambda h: h.update(schema_version=store.SCHEMA_VERSION + 1))
        elif kind == "header_not_dict":
            zarr.open_group(str(path), mode="r+").attrs["mothlab"] = ["a", "list"]
        elif kind == "header_missing_config":
            _edit_header(path, lambda h: h.pop("config"))
        elif kind == "header_missing_kind":
            _edit_header(path, lambda h: h.pop("kind"))
        else:
            raise AssertionError(kind)
        return {"store": path}

    return setup


def foreign(tmp_path):
    g = zarr.open_group(str(tmp_path / "f.zarr"), mode="w")
    g.create_array("x", shape=(2,), dtype="f4")
    return {"store": tmp_path / "f.zarr"}


def dataset_store(tmp_path):
    store.create_store(tmp_path / "d.zarr", "dataset", {"n": 1})
    return {"store": tmp_path / "d.zarr"}


def plain_dir(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    return {"store": tmp_path / "notes"}


def plain_file(tmp_path):
    (tmp_path / "e.zarr").write_text("not a store")
    return {"store": tmp_path / "e.zarr"}


def csv_file(text):
    def setup(tmp_path):
        path = tmp_path / "f.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return {"csv": path}

    return setup


def none(tmp_path):
    return {}


# ---------------------------------------------------------------------------- the table
# (id, argv with {placeholders} from setup (and {tmp}), setup, text that must be in stderr, rc)
CASES = [
    # --- stores that know they are whole (14.1): refused on open, naming file, problem, repair
    (
        "missing chunk",
        ["report", "{store}"],
        damaged("missing_chunk"),
        "chunk file levels/1/mw0/c/0/0/0 of levels/1 is missing",
        2,
    ),
    (
        "missing chunk, motifs",
        ["motifs", "{store}"],
        damaged("missing_chunk"),
        "levels/1/mw0/c/0/0/0 of levels/1 is missing",
        2,
    ),
    (
        "missing test_loss chunk",
        ["report", "{store}"],
        damaged("missing_loss_chunk"),
        "of test_loss is missing",
        2,
    ),
    (
        "truncated chunk",
        ["report", "{store}"],
        damaged("truncated"),
        "levels/2/w1/c/0/0/0 of levels/2 is truncated",
        2,
    ),
    (
        "garbage chunk",
        ["motifs", "{store}"],
        damaged("garbage"),
        "levels/2/w1/c/0/0/0 of levels/2 was altered after it was written",
        2,
    ),
    (
        "one flipped bit",
        ["motifs", "{store}"],
        damaged("bit_flip"),
        "levels/5/w2/c/0/0/0 of levels/5 was altered",
        2,
    ),
    (
        "flipped bit in the losses",
        ["report", "{store}"],
        damaged("bit_flip_loss"),
        "of val_loss",
        2,
    ),
    (
        "deleted level group",
        ["report", "{store}"],
        damaged("level_group"),
        "levels/3 is missing",
        2,
    ),
    (
        "altered array metadata",
        ["report", "{store}"],
        damaged("array_meta"),
        "metadata file levels/0/w0/zarr.json of levels/0 was altered",
        2,
    ),
    (
        "the repair is named",
        ["report", "{store}"],
        damaged("bit_flip"),
        "mothlab.store.rollback(path, 'levels/5')",
        2,
    ),
    (
        "garbage store metadata",
        ["report", "{store}"],
        damaged("header_garbage"),
        "corrupted zarr store",
        2,
    ),
    (
        "damaged motif results",
        ["motifs", "{store}"],
        damaged("motif_chunk"),
        "z/c/3/0/0 of the store was altered after it was written",
        2,
    ),
    (
        "header is not a dict",
        ["motifs", "{store}"],
        damaged("header_not_dict"),
        "corrupted mothlab header",
        2,
    ),
    (
        "header missing a field",
        ["report", "{store}"],
        damaged("header_missing_kind"),
        "corrupted mothlab header: expected a dict with fields kind",
        2,
    ),
    ("newer schema", ["report", "{store}"], damaged("newer_schema"), "Upgrade mothlab", 2),
    ("foreign zarr group", ["report", "{store}"], foreign, "not a mothlab store", 2),
    (
        "dataset given as experiment",
        ["motifs", "{store}"],
        dataset_store,
        "a mothlab 'dataset' store, not a 'experiment' store",
        2,
    ),
    ("plain directory", ["report", "{store}"], plain_dir, "not a zarr store", 2),
    ("file where a store is expected", ["motifs", "{store}"], plain_file, "not a zarr store", 2),
    ("missing store", ["report", "{tmp}/nope.zarr"], none, "the path does not exist", 2),
    # --- the shipped assets are read-only (14.3)
    (
        "motifs never write into the assets",
        ["motifs", str(ASSET), "--overwrite"],
        none,
        "refusing to write into a shipped asset",
        2,
    ),
    # --- simulate: flags (14.2, 14.7 and before)
    ("t-end zero", ["simulate", "--t-end", "0"], none, "--t-end must be a positive", 2),
    ("t-end nan", ["simulate", "--t-end", "nan"], none, "--t-end must be a positive", 2),
    ("n-times 1", ["simulate", "--n-times", "1"], none, "--n-times must be at least 2", 2),
    ("n-times huge", ["simulate", "--n-times", "1000000"], none, "at most 100,000", 2),
    ("s negative", ["simulate", "--s", "-1"], none, "--s must be a positive", 2),
    ("s infinite", ["simulate", "--s", "inf"], none, "--s must be a positive", 2),
    (
        "unknown moth preset",
        ["simulate", "--moth-preset", "bee"],
        none,
        "Unknown moth preset 'bee'",
        2,
    ),
    ("state nan", ["simulate", "--xd", "nan"], none, "--xd must be a finite", 2),
    ("control inf", ["simulate", "--tau=-inf"], none, "--tau must be a finite", 2),
    (
        "value 1e300",
        ["simulate", "--xd", "1e300"],
        none,
        "--xd: 1e+300 is outside the range mothlab simulates",
        2,
    ),
    ("negative wing force", ["simulate", "--F", "-1"], none, "F must be >= 0", 2),
    (
        "force 1e30",
        ["simulate", "--F", "1e30"],
        none,
        "F = 1e+30 dyn at index (0,) is outside [0, 200000] dyn, the range in which simulate is "
        "accurate",
        2,
    ),
    (
        "torque 1e12",
        ["simulate", "--tau", "1e12"],
        none,
        "tau = 1e+12 dyn·cm at index (0,) is outside [-1e+06, 1e+06] dyn·cm",
        2,
    ),
    (
        "rate 1e6",
        ["simulate", "--thetad", "1e6"],
        none,
        "thetad = 1e+06 rad/s at index (0,) is outside [-1000, 1000] rad/s",
        2,
    ),
    (
        "scale 1e6",
        ["simulate", "--s", "1e6"],
        none,
        "length scale s = 1e+06 is outside [0.25, 4]",
        2,
    ),
    (
        "scale 1e-6",
        ["simulate", "--s", "1e-6"],
        none,
        "length scale s = 1e-06 is outside [0.25, 4]",
        2,
    ),
    (
        "t-end 1e9 (no int32 overflow)",
        ["simulate", "--t-end", "1e9"],
        none,
        "t ends at 1e+09 s, beyond the longest span simulate integrates (3600 s",
        2,
    ),
    (
        "t-end 1e6 (no hang)",
        ["simulate", "--t-end", "1e6"],
        none,
        "t ends at 1e+06 s, beyond the longest span",
        2,
    ),
    (
        "csv torque 1e12",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER}\n{ROW}\n0,100,0,0,0.8,0,3.9,0,3000,1.2,1e12\n"),
        "tau = 1e+12 dyn·cm at index (1,) is outside",
        2,
    ),
    (
        "csv and flags",
        ["simulate", "--csv", "{csv}", "--xd", "1"],
        csv_file(f"{HEADER}\n{ROW}\n"),
        "not both",
        2,
    ),
    ("not a number flag", ["simulate", "--xd", "fast"], none, "invalid float value: 'fast'", 2),
    ("unknown format", ["simulate", "--format", "xml"], none, "invalid choice: 'xml'", 2),
    # --- simulate: CSV files
    ("csv missing", ["simulate", "--csv", "{tmp}/missing.csv"], none, "does not exist", 2),
    ("csv is a directory", ["simulate", "--csv", "{tmp}"], none, "is a directory", 2),
    (
        "csv missing columns",
        ["simulate", "--csv", "{csv}"],
        csv_file("xd,yd\n1,2\n"),
        "missing column(s) theta",
        2,
    ),
    (
        "csv unknown column",
        ["simulate", "--csv", "{csv}"],
        csv_file("speed\n1\n"),
        "unknown column(s) speed",
        2,
    ),
    (
        "csv duplicate column",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER},xd\n{ROW},1\n"),
        "column(s) xd appear more than once",
        2,
    ),
    ("csv no rows", ["simulate", "--csv", "{csv}"], csv_file(HEADER + "\n"), "no rows", 2),
    ("csv empty file", ["simulate", "--csv", "{csv}"], csv_file(""), "missing column(s)", 2),
    (
        "csv not a number",
        ["simulate", "--csv", "{csv}"],
        csv_file(HEADER + "\n" + ",".join(["1"] * 10 + ["fast"]) + "\n"),
        "row 1, column tau: 'fast' is not a number",
        2,
    ),
    (
        "csv row with extra values",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER}\n{ROW}\n{ROW},7\n"),
        "row 2: 12 values but the header has 11 columns (more values",
        2,
    ),
    (
        "csv row with too few values",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER}\n0,1\n"),
        "row 1: 2 values but the header has 11 columns (fewer",
        2,
    ),
    (
        "csv value 1e300",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER}\n0,1e300,0,0,0.8,0,3.9,0,3000,1.2,0\n"),
        "row 1, column xd: '1e300' is outside the range",
        2,
    ),
    (
        "csv value nan",
        ["simulate", "--csv", "{csv}"],
        csv_file(f"{HEADER}\n0,nan,0,0,0.8,0,3.9,0,3000,1.2,0\n"),
        "row 1, column xd: 'nan' is not finite",
        2,
    ),
    (
        "csv not UTF-8",
        ["simulate", "--csv", "{csv}"],
        csv_file(b"x,\xff\xfe\n1,2\n"),
        "is not a UTF-8 text CSV file",
        2,
    ),
    # --- I/O failures become one line naming the file (14.4)
    (
        "disk full",
        ["simulate", "--out", "/dev/full"],
        none,
        "/dev/full: no space left on the device",
        2,
    ),
    (
        "a directory where a file is expected",
        ["simulate", "--out", "{tmp}"],
        none,
        "is a directory, but a file is expected",
        2,
    ),
    (
        "output folder missing",
        ["simulate", "--out", "{tmp}/no/such/out.csv"],
        none,
        "out.csv: no such file or directory",
        2,
    ),
    # --- dataset and motifs bounds (handled before issue 14)
    (
        "dataset n zero",
        ["dataset", "--n", "0", "--out", "{tmp}/d.zarr"],
        none,
        "n must be at least 1; got 0",
        2,
    ),
    (
        "dataset n negative",
        ["dataset", "--n", "-5", "--out", "{tmp}/d.zarr"],
        none,
        "n must be at least 1; got -5",
        2,
    ),
    (
        "dataset chunk zero",
        ["dataset", "--n", "10", "--chunk", "0", "--out", "{tmp}/d.zarr"],
        none,
        "chunk must be at least 1; got 0",
        2,
    ),
    (
        "dataset seed negative",
        ["dataset", "--n", "10", "--seed", "-1", "--out", "{tmp}/d.zarr"],
        none,
        "seed must be an integer >= 0",
        2,
    ),
    (
        "dataset into a foreign store",
        ["dataset", "--n", "10", "--out", "{store}"],
        foreign,
        "not a mothlab store",
        2,
    ),
    (
        "dataset into an experiment",
        ["dataset", "--n", "10", "--out", "{store}"],
        damaged("newer_schema"),
        "a mothlab 'experiment' store, not a 'dataset' store",
        2,
    ),
    (
        "motifs n-random 1",
        ["motifs", str(ASSET), "--n-random", "1"],
        none,
        "--n-random must be >= 2",
        2,
    ),
    (
        "motifs unknown null",
        ["motifs", str(ASSET), "--null", "nope"],
        none,
        "invalid choice: 'nope'",
        2,
    ),
    # --- train: what is refused before any work
    (
        "train config file missing",
        ["train", "--config", "{tmp}/none.json", "--out", "{tmp}/t.zarr"],
        none,
        "none.json",
        2,
    ),
    (
        "train config is a directory",
        ["train", "--config", "{tmp}", "--out", "{tmp}/t.zarr"],
        none,
        "is a directory; give a JSON file",
        2,
    ),
    (
        "train config not JSON",
        ["train", "--config", "{csv}", "--out", "{tmp}/t.zarr"],
        csv_file("{ not json"),
        "Expecting property name",
        2,
    ),
    (
        "train config is a list",
        ["train", "--config", "{csv}", "--out", "{tmp}/t.zarr"],
        csv_file("[1, 2]"),
        "must hold a JSON object of config fields",
        2,
    ),
    (
        "train config unknown field",
        ["train", "--config", "{csv}", "--out", "{tmp}/t.zarr"],
        csv_file('{"widthz": [3]}'),
        "has unknown fields ['widthz']; allowed: activation",
        2,
    ),
    (
        "train widths -5",
        ["train", "--preset", "tiny", "--widths=-5", "--out", "{tmp}/t.zarr"],
        none,
        "argument --widths: hidden widths must be positive whole numbers",
        2,
    ),
    (
        "train learning rate inf",
        ["train", "--preset", "tiny", "--learning-rate", "inf", "--out", "{tmp}/t.zarr"],
        none,
        "learning_rate must be a finite number (more than 0), got 'inf'",
        2,
    ),
    (
        "experiment header missing a field",
        ["report", "{store}"],
        damaged("header_missing_config"),
        "corrupted mothlab experiment header: field(s) config missing",
        2,
    ),
    ("no command", [], none, "the following arguments are required: COMMAND", 2),
    ("unknown command", ["fly-to-the-moon"], none, "invalid choice: 'fly-to-the-moon'", 2),
]


@pytest.mark.parametrize("argv, setup, text, rc", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(argv, setup, text, rc, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = {"tmp": str(tmp_path), **{k: str(v) for k, v in setup(tmp_path).items()}}
    argv = [a.format(**values) for a in argv]
    try:
        got = main(argv)
    except SystemExit as exit_:  # argparse refuses unknown flags and commands itself
        got = exit_.code
    err = capsys.readouterr().err
    assert got == rc, err
    assert text in err, err
    assert "Traceback" not in err
    if rc == 2 and argv and not text.startswith(("invalid", "the following")):
        # the boundary's one line (after any progress bar): command, "error:", the message
        lines = [line for line in err.splitlines() if line.strip()]
        assert re.match(rf"mothlab {argv[0]}: error: ", lines[-1]), err
        assert text in lines[-1]


def test_every_damage_case_of_the_table_is_refused_by_open_store_too(tmp_path):
    """The library refuses what the CLI refuses (load_experiment is what the app calls)."""
    from mothlab.nets import load_experiment

    for i, kind in enumerate(
        ["missing_chunk", "truncated", "garbage", "bit_flip", "level_group", "missing_loss_chunk"]
    ):
        sub = tmp_path / str(i)
        sub.mkdir()
        path = damaged(kind)(sub)["store"]
        with pytest.raises(store.StoreDamaged) as err:
            load_experiment(path)
        assert str(path) in str(err.value) and "Repair:" in str(err.value)


# ---------------------------------------------------------------------------- the boundary itself
def _boom(args):
    raise RuntimeError("something nobody expected")


def _interrupt(args):
    raise KeyboardInterrupt


def _cancelled(args):
    from mothlab.progress import Cancelled

    raise Cancelled("cancelled; resume with the same command")


def _no_space(args):
    raise OSError(28, "No space left on device", "/data/run.zarr/levels/3/w0/c/0/0/0")


def _read_only(args):
    raise PermissionError(13, "Permission denied", "/data/run.zarr")


@pytest.mark.parametrize(
    "func, debug, rc, texts",
    [
        (
            _boom,
            False,
            1,
            [
                "mothlab simulate: unexpected error (RuntimeError: something nobody expected)",
                "This is a bug in mothlab: please report it to the mothlab issue tracker",
            ],
        ),
        (_boom, True, 1, ["Traceback (most recent call last)", "RuntimeError: something nobody"]),
        (_interrupt, False, 130, ["mothlab simulate: interrupted"]),
        (_cancelled, False, 130, ["interrupted: cancelled; resume with the same command"]),
        (
            _no_space,
            False,
            2,
            [
                "error: /data/run.zarr/levels/3/w0/c/0/0/0: no space left on the "
                "device; free some space or write elsewhere."
            ],
        ),
        (_read_only, False, 2, ["error: /data/run.zarr: permission denied"]),
    ],
    ids=["unexpected", "unexpected --debug", "ctrl-c", "cancelled", "disk full", "permission"],
)
def test_error_boundary(func, debug, rc, texts, monkeypatch, capsys):
    import mothlab.cli.simulate as sim

    monkeypatch.setattr(sim, "run", func)
    monkeypatch.delenv("MOTHLAB_DEBUG", raising=False)
    assert main(["simulate", *(["--debug"] if debug else [])]) == rc
    err = capsys.readouterr().err
    for t in texts:
        assert t in err, err
    if not debug:
        assert "Traceback" not in err
    monkeypatch.setenv("MOTHLAB_DEBUG", "1")
    assert main(["simulate"]) == rc
    if func is _boom:
        assert "Traceback" in capsys.readouterr().err


def test_a_non_finite_result_is_an_error_naming_the_flight(tmp_path, capsys, monkeypatch):
    """Never a silent NaN: whatever the integrator lets through, the CLI names the first bad
    flight (a stand-in simulator returns NaN for the second flight)."""
    import numpy as np

    import mothlab.moth

    def nan_second(state0, controls, params, t, precise=False, **k):
        out = np.repeat(np.asarray(state0, float)[:, None], len(t), axis=1)
        out[1, -1, 3] = np.nan
        return out

    monkeypatch.setattr(mothlab.moth, "simulate", nan_second)
    src = tmp_path / "f.csv"
    src.write_text(f"{HEADER}\n{ROW}\n{ROW}\n")
    assert main(["simulate", "--csv", str(src)]) == 2
    err = capsys.readouterr().err
    assert f"1 of 2 flight(s) came back with NaN or infinite states (first: row 2 of {src}" in err


def test_a_real_process_gives_one_line_and_exit_2(tmp_path):
    """The entry point as a user runs it (python -m mothlab), with a damaged store."""
    path = damaged("bit_flip")(tmp_path)["store"]
    r = subprocess.run(
        [sys.executable, "-m", "mothlab", "report", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "was altered after it was written" in r.stderr
    assert json.loads((path / "zarr.json").read_text())["attributes"]["mothlab"]["complete"]
