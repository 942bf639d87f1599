"""``mothlab simulate`` and ``mothlab dataset``: round trips through files, errors, a real process.

Real simulations here use one trajectory on the default time grid, the same compiled shape as
tests/test_data.py, so the integrator compiles once per test session.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from mothlab.cli import main
from mothlab.data import open_dataset
from mothlab.moth import CONTROL_NAMES, STATE_NAMES, MothParams, simulate


def _read_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    return rows


def test_simulate_flags_to_stdout_csv(capsys):
    rc = main(
        [
            "simulate",
            "--xd",
            "100",
            "--theta",
            "0.8",
            "--phi",
            "3.9",
            "--F",
            "3000",
            "--alpha",
            "1.2",
            "--tau",
            "-50",
        ]
    )
    assert rc == 0
    rows = _read_csv(capsys.readouterr().out)
    assert [r["t"] for r in rows] == ["0.0", "0.02"]
    assert list(rows[0]) == ["trajectory", "t", *STATE_NAMES, *CONTROL_NAMES]
    s0 = np.array([[0, 100, 0, 0, 0.8, 0, 3.9, 0]])
    u = np.array([[3000, 1.2, -50]])
    expect = simulate(s0, u)[0, -1]
    got = np.array([float(rows[1][k]) for k in STATE_NAMES])
    np.testing.assert_array_equal(got.astype(np.float32), expect)
    assert float(rows[1]["F"]) == 3000 and float(rows[1]["tau"]) == -50


def test_simulate_csv_batch_to_json(tmp_path, capsys, monkeypatch):
    import mothlab.moth

    # simulate the batch one flight per call: the real integrator, without compiling for a
    # second batch shape (the batch handling itself is the CLI's, and is what is tested here)
    real = mothlab.moth.simulate
    monkeypatch.setattr(
        mothlab.moth,
        "simulate",
        lambda s0, u, *a, **k: np.concatenate(
            [real(s0[i : i + 1], u[i : i + 1], *a, **k) for i in range(len(s0))]
        ),
    )
    src = tmp_path / "flights.csv"
    # x and y left out (default 0); columns in any order
    # (with the byte-order mark spreadsheets write)
    src.write_text(
        "\ufeffF,alpha,tau,xd,yd,theta,thetad,phi,phid\n"
        "2600,1.5708,0,0,0,0,0,3.14159,0\n"
        "0,0,0,10,-20,1,2,4,3\n"
    )
    out = tmp_path / "result.json"
    assert main(["simulate", "--csv", str(src), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["state_names"] == list(STATE_NAMES) and data["t"] == [0.0, 0.02]
    assert data["params"] == MothParams().to_dict() and data["precise"] is False
    assert len(data["trajectories"]) == 2
    second = data["trajectories"][1]
    assert second["state0"]["x"] == 0.0 and second["state0"]["yd"] == -20.0
    assert second["controls"] == {"F": 0.0, "alpha": 0.0, "tau": 0.0}
    s0 = np.array([[0, 10, 0, -20, 1, 2, 4, 3]])
    np.testing.assert_array_equal(
        np.float32(second["states"][-1]), real(s0, np.zeros((1, 3)))[0, -1]
    )
    # free fall with no thrust: the body moves downward
    assert second["states"][-1][3] < -20.0
    # the same batch as CSV on stdout
    assert main(["simulate", "--csv", str(src), "--format", "csv"]) == 0
    rows = _read_csv(capsys.readouterr().out)
    assert len(rows) == 4 and rows[3]["trajectory"] == "1"


def test_simulate_options_reach_the_simulator(monkeypatch, tmp_path):
    import mothlab.moth

    seen = {}

    def fake(state0, controls, params=None, t=None, precise=False, **kw):
        seen.update(state0=state0, params=params, t=t, precise=precise)
        return np.zeros((len(state0), len(t), 8))

    monkeypatch.setattr(mothlab.moth, "simulate", fake)
    out = tmp_path / "o.csv"
    assert (
        main(
            [
                "simulate",
                "--moth-preset",
                "scaled",
                "--t-end",
                "0.1",
                "--n-times",
                "11",
                "--precise",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert seen["params"].s == 1.3 and seen["precise"] is True
    np.testing.assert_allclose(seen["t"], np.linspace(0, 0.1, 11))
    # defaults: a straight body at rest (φ = θ + π)
    assert seen["state0"].tolist() == [[0, 0, 0, 0, 0, 0, math.pi, 0]]
    assert len(_read_csv(out.read_text())) == 11
    assert main(["simulate", "--s", "0.8"]) == 0 and seen["params"].s == 0.8


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--t-end", "0"], "--t-end must be a positive"),
        (["--n-times", "1"], "--n-times must be at least 2"),
        (["--s", "-1"], "--s must be a positive"),
        (["--moth-preset", "bee"], "Unknown moth preset 'bee'"),
        (["--xd", "nan"], "--xd must be a finite"),
        (["--csv", "missing.csv"], "does not exist"),
    ],
)
def test_simulate_bad_flags(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", *argv]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, match",
    [
        ("xd,yd\n1,2\n", "missing column(s) theta"),
        ("speed\n1\n", "unknown column(s) speed"),
        (",".join(STATE_NAMES + CONTROL_NAMES) + "\n", "no rows"),
        (
            ",".join(STATE_NAMES + CONTROL_NAMES) + "\n" + ",".join(["1"] * 10 + ["fast"]) + "\n",
            "row 1, column tau: 'fast' is not a number",
        ),
    ],
)
def test_simulate_bad_csv(text, match, tmp_path, capsys):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    assert main(["simulate", "--csv", str(src)]) == 2
    assert match in capsys.readouterr().err
    assert main(["simulate", "--csv", str(src), "--xd", "1"]) == 2
    assert "not both" in capsys.readouterr().err


def test_dataset_command_resumes_and_summarises(tmp_path, capsys, monkeypatch):
    import mothlab.data.dataset as dsmod

    out = tmp_path / "d.zarr"
    # interrupt the first run after two chunks (as Ctrl-C would)
    real = dsmod.generate_dataset

    def interrupted(*args, progress=None, **kwargs):
        def stop(event):
            progress(event)
            if event.payload.get("stored") == 2:
                raise KeyboardInterrupt

        return real(*args, progress=stop, **kwargs)

    import mothlab.data

    monkeypatch.setattr(mothlab.data, "generate_dataset", interrupted)
    argv = ["dataset", "--n", "4", "--seed", "3", "--chunk", "1", "--out", str(out)]
    assert main(argv) == 130
    assert "incomplete" in str(pytest.raises(ValueError, open_dataset, out).value)
    monkeypatch.setattr(mothlab.data, "generate_dataset", real)
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "resuming" in cap.err and "2 of 4" in cap.err
    assert "4 trajectories (seed 3, float32); 2 simulated in" in cap.out
    assert "trajectories/s" in cap.out
    assert "simulating" in cap.err  # the tqdm bar
    ds = open_dataset(out)
    full = real(tmp_path / "ref.zarr", 4, seed=3, chunk=1)
    np.testing.assert_array_equal(ds.state_f[:], full.state_f[:])
    # bad input: a clear message, exit code 2
    assert main(["dataset", "--n", "0", "--out", str(tmp_path / "z.zarr")]) == 2
    assert "n must be at least 1" in capsys.readouterr().err
    assert main([*argv[:-2], "--out", str(tmp_path), "--overwrite"]) == 2
    assert "refusing to delete" in capsys.readouterr().err

    assert main(["dataset", "--n", "5", "--seed", "3", "--chunk", "1", "--out", str(out)]) == 2
    assert "n: store has 4, requested 5" in capsys.readouterr().err

    # the command in a real process (python -m mothlab: no dependence on PATH): a complete store is reported, not redone
    proc = subprocess.run(
        [sys.executable, "-m", "mothlab", *argv, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "already complete (4 trajectories" in proc.stdout
