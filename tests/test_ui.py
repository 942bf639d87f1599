"""App components without a server: a param change produces the new plot, a job's progress reaches
the view, cancel works, bad input becomes a message in the page."""

import math
import shutil
import time

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from mothlab import jobs  # noqa: E402
from mothlab.ui import common  # noqa: E402


@pytest.fixture(scope="module")
def flight():
    from mothlab.ui.flight import FlightView, warm_up

    warm_up(block=True)
    view = FlightView()
    view._wait_ready()
    return view


@pytest.fixture
def catalog_dir(tmp_path, monkeypatch, tiny_experiment):
    """A fresh process-wide catalog listing only a copy of the tiny experiment."""
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    shutil.copytree(tiny_experiment, exp_dir / "tiny.zarr")
    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(exp_dir))
    monkeypatch.setattr(common, "ASSETS", tmp_path / "no-assets")
    monkeypatch.setattr(common, "_CATALOG", None)
    return exp_dir


# -- Flight --------------------------------------------------------------------------------------

def test_free_fall_matches_gravity(flight):
    flight.preset = "free-fall"
    y = flight.trajectory[:, 2]
    t = flight.times / 1000.0
    # no wing force, no drag at rest: y = −g t²/2 (drag at ≤ 20 cm/s changes it by < 1 %)
    np.testing.assert_allclose(y, -0.5 * 980.0 * t ** 2, rtol=0.01, atol=1e-6)
    assert flight.fig_moth.y_range.start < y[-1]


def test_hover_stays_put_and_slider_change_redraws(flight):
    flight.preset = "hover"
    assert abs(flight.trajectory[-1, 2]) < 1e-3 and abs(flight.trajectory[-1, 0]) < 1e-3
    n = flight.n_draws
    before = list(flight.src_trails.data["ys"][2])
    flight.setup.F = 3 * flight.body.hover_force  # climb: net upward force 2(m1+m2)g
    assert flight.n_draws == n + 1
    after = flight.src_trails.data["ys"][2]
    assert after[-1] > before[-1] + 0.1
    t = flight.times[-1] / 1000.0
    assert after[-1] - after[0] == pytest.approx(0.5 * 2 * 980.0 * t ** 2, rel=0.05)


def test_frame_moves_the_moth(flight):
    flight.preset = "free-fall"
    flight.frame = 0
    y0 = np.mean(flight.src_head.data["ys"][0])
    flight.frame = 40
    y1 = np.mean(flight.src_head.data["ys"][0])
    assert y1 < y0
    assert flight.time_spans[0].location == pytest.approx(flight.times[40])


def test_thrust_arrow_scales_with_force(flight):
    flight.preset = "hover"
    flight.frame = 0
    d = flight.src_thrust.data
    length = math.hypot(d["x1"][0] - d["x0"][0], d["y1"][0] - d["y0"][0])
    assert length == pytest.approx(2 * flight.body.ahead, rel=1e-3)  # hover force: 2·ahead
    assert d["y1"][0] > d["y0"][0]  # points up


def test_impossible_body_shows_message_and_keeps_last_flight(flight):
    flight.preset = "hover"
    traj = flight.trajectory.copy()
    flight.body.L3 = 5.0
    try:
        assert flight._status.visible and flight._status.alert_type == "danger"
        assert "L3" in flight._status.object and "choose L3" in flight._status.object
        np.testing.assert_array_equal(flight.trajectory, traj)
    finally:
        flight.body.L3 = 0.75
    assert not flight._status.visible


def test_body_change_changes_flight(flight):
    flight.preset = "pitch-up"
    theta = flight.trajectory[-1, 4]
    flight.body.K = 46000.0
    try:
        assert flight.trajectory[-1, 4] != pytest.approx(theta, abs=1e-7)
    finally:
        flight.body.K = 23000.0


# -- Train & prune ---------------------------------------------------------------------------------

def test_job_progress_reaches_view_and_cancel(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    runner = jobs.JobRunner()
    gate = {"go": False}

    def fake_job(config, out):
        def fn(progress, cancel):
            for step in range(10_000):
                if cancel():
                    return None
                progress({"level": step // 5, "n_levels": 1000, "step": step,
                          "losses": np.full(config.n_networks, 1.0 / (step + 1)),
                          "eta_s": 12.0, "message": f"step {step}", "throughput": 100.0})
                time.sleep(0.002)
                if step == 20:
                    gate["go"] = True
            return out
        return fn

    monkeypatch.setattr(train, "train_job", fake_job)
    view = train.TrainView(runner=runner)
    view.preset = "tiny"
    assert view.widths == "8, 8" and view.n_networks == 4
    job = view.start()
    assert job is not None and job.kind == "train"
    while not gate["go"]:
        time.sleep(0.01)
    view.refresh()
    assert not view.cancel_button.disabled
    assert 0 < view.progress.value < 1000
    assert "running" in view.status.object and "ETA" in view.status.object
    assert len(view.src_median.data["x"]) > 5
    # a second session sees the same job (jobs belong to the process)
    other = train.TrainView(runner=runner)
    assert other.job is job
    view.cancel()
    assert job.wait(10) and job.state == "cancelled"
    view.refresh()
    assert not view.resume_button.disabled and view.cancel_button.disabled


def test_bad_training_input_is_a_message(tmp_path, monkeypatch):
    from mothlab.ui.train import TrainView

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    view = TrainView(runner=jobs.JobRunner())
    view.widths = "24, many"
    assert view.start() is None
    assert view._message.visible and "whole numbers" in view._message.object
    view.widths = "8, 8"
    view.schedule = "0, 1.5"
    assert view.start() is None and view._message.alert_type == "danger"


def test_failing_job_shows_error(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))

    def broken(config, out):
        def fn(progress, cancel):
            raise ValueError("dataset is corrupted: regenerate it")
        return fn

    monkeypatch.setattr(train, "train_job", broken)
    view = train.TrainView(runner=jobs.JobRunner())
    view.preset = "tiny"
    job = view.start()
    assert job.wait(10)
    view.refresh()
    assert job.state == "failed" and "dataset is corrupted" in view.status.object


def test_real_tiny_training_job_appears_in_explorer(catalog_dir, monkeypatch):
    from conftest import synthetic_splits

    from mothlab.nets import run_experiment
    from mothlab.ui import train
    from mothlab.ui.explorer import ExplorerView

    def job_on_synthetic(config, out):  # the real runner, minus dataset generation
        def fn(progress, cancel):
            run_experiment(config, out, progress=progress, cancel=cancel,
                           data=synthetic_splits(seed=1))
            common.catalog().add(out)
            return out
        return fn

    monkeypatch.setattr(train, "train_job", job_on_synthetic)
    view = train.TrainView(runner=jobs.JobRunner())
    view.preset = "tiny"
    view.run_name = "from-ui"
    job = view.start()
    assert job.wait(300), "tiny training did not finish"
    view.refresh()
    assert job.state == "done", job.error
    assert view.progress.value == 1000 and "Saved to" in view.status.object
    explorer = ExplorerView()
    assert "from-ui" in explorer.param.experiment.objects
    explorer.experiment = "from-ui"
    assert explorer.exp is not None and explorer.exp.complete


# -- Sparsity explorer -----------------------------------------------------------------------------

# (moved to tests/test_explorer.py: graph data, slider, corrupted store, switching experiments)


# -- Motifs and the whole app ------------------------------------------------------------------

# (motif tab tests: tests/test_explorer.py; the z-field adapter is gone with the settled API)


def test_mothlab_composes_tabs(catalog_dir):
    from mothlab.ui import MothLab

    lab = MothLab()
    layout = lab.__panel__()
    assert [t for t in lab._tabs._names] == ["Flight", "Train & prune", "Sparsity explorer",
                                            "Motifs", "Fly"]
    assert layout is not None
