"""App components without a server: a param change produces the new plot, a job's progress reaches
the view, cancel works, bad input becomes a message in the page."""

import math
import shutil
import time
from pathlib import Path

import numpy as np
import panel as pn  # a dependency of mothlab: a missing one fails, never skips
import pytest

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


def _fresh_import(code: str) -> set[str]:
    """Run ``code`` in a fresh interpreter; the top-level packages it imported."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_moth_is_lazy_and_every_public_name_still_works():
    import mothlab.moth as moth
    import mothlab.moth.integrate as integrate
    from mothlab.moth import names

    loaded = _fresh_import("from mothlab.moth import MothParams, STATE_LABELS, PRESETS")
    assert "jax" not in loaded  # the parameters and names need no JAX
    for name in moth.__all__:  # and every public name resolves (simulate imports it)
        assert getattr(moth, name) is not None
    from mothlab.moth import simulate

    assert simulate is integrate.simulate and moth.integrate is integrate
    # one list of names: integrate re-exports the tuples of names.py (the same objects)
    for k in ("STATE_NAMES", "STATE_LABELS", "STATE_UNITS", "CONTROL_NAMES", "CONTROL_LABELS"):
        assert getattr(integrate, k) is getattr(names, k) is getattr(moth, k)
    assert integrate.CONTROL_UNITS == names.CONTROL_UNITS
    with pytest.raises(AttributeError):
        moth.no_such_name  # noqa: B018


def test_first_page_imports_neither_jax_nor_holoviews():
    """The Flight tab, the served first page, is built without JAX (imported once the page is
    drawn, to fly the moth), HoloViews (and through it matplotlib) or markdown."""
    loaded = _fresh_import("import mothlab.ui.app, mothlab.ui.flight")
    assert not loaded & {"jax", "holoviews", "matplotlib", "markdown_it", "zarr"}


def test_free_fall_matches_gravity(flight):
    flight.preset = "free-fall"
    y = flight.trajectory[:, 2]
    t = flight.times / 1000.0
    # no wing force, no drag at rest: y = −g t²/2 (drag at ≤ 20 cm/s changes it by < 1 %)
    np.testing.assert_allclose(y, -0.5 * 980.0 * t**2, rtol=0.01, atol=1e-6)
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
    assert after[-1] - after[0] == pytest.approx(0.5 * 2 * 980.0 * t**2, rel=0.05)


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


def _fake_train(gate, n_levels=4, steps=50):
    """A job function shaped like run_experiment: Progress events with level, step and losses
    per network; raises Cancelled when asked."""
    from mothlab.progress import Cancelled, report

    def fake_job(config, out):
        def fn(progress, cancel):
            for lv in range(n_levels):
                for step in range(0, steps + 1, 5):
                    if cancel():
                        raise Cancelled("cancelled; resume it")
                    frac = (lv + step / steps) / n_levels
                    report(
                        progress,
                        frac,
                        f"level {lv} step {step}",
                        level=lv,
                        n_levels=n_levels,
                        sparsity=lv / 10,
                        step=step,
                        losses=[1.0 / (1 + step + 100 * lv)] * config.n_networks,
                        eta_s=None if lv == 0 else 12.0,
                        throughput=100.0,
                    )
                    time.sleep(0.002)
                    if lv == 1 and step == 10:
                        gate["go"] = True
                        while gate.get("hold"):
                            time.sleep(0.01)
            return out

        return fn

    return fake_job


def test_form_is_the_experiment_config_with_tooltips():
    from mothlab.nets import ExperimentConfig
    from mothlab.ui import train

    view = train.TrainView(runner=jobs.JobRunner(), owner="a")
    assert isinstance(view.cfg, ExperimentConfig)
    view.preset = "tiny"
    assert view.cfg.widths == ExperimentConfig.preset("tiny").widths
    form = view.__panel__()
    tips = view.tooltips
    # config parameters carry their doc and allowed range as the widget's tooltip
    assert "Networks in the ensemble" in tips["n_networks"] and "at least 1" in tips["n_networks"]
    assert "threshold" in tips and "learning_rate" in tips  # the "More settings" part too
    labels = {getattr(w, "label", None) or w.name for w in form.select(pn.widgets.Widget)}
    # every parameter of ExperimentConfig has a widget: one declaration, in nets/config.py
    assert {p.label for n, p in ExperimentConfig.param.objects().items() if n != "name"} <= labels
    if "method" in ExperimentConfig.param:  # the sparse helper's choice appears by itself
        assert ExperimentConfig.param.method.label in labels


def test_job_progress_reaches_view_owner_cancels_others_cannot(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    monkeypatch.delenv("MOTHLAB_TEACHER", raising=False)
    runner = jobs.JobRunner()
    gate = {"go": False, "hold": True}
    monkeypatch.setattr(train, "train_job", _fake_train(gate))
    view = train.TrainView(runner=runner, owner="alice")
    view.preset = "tiny"
    job = view.start()
    assert job is not None and job.kind == "train" and job.owner == "alice"
    while not gate["go"]:
        time.sleep(0.01)
    view.refresh()
    assert not view.cancel_button.disabled
    assert 0 < view.progress.value < 1000
    assert "running" in view.status.object and "ETA" in view.status.object
    # x-axis: training steps continued across levels (level 1 starts after level 0's 50 steps)
    x = np.asarray(view.src_median.data["x"])
    assert x.max() >= 50 + 10 and np.all(np.diff(x) >= 0)
    assert list(view.src_levels.data["x"]) == [0.0, 50.0]
    # another session sees the job with its owner, may watch it, may not cancel it
    other = train.TrainView(runner=runner, owner="bob")
    assert other.watching == f"job {job.id}" and other.job is job
    assert "alice" not in other.jobs_table.object  # owners shown by a tag, not their id
    assert "session" in other.jobs_table.object and "you" in view.jobs_table.object
    assert other.cancel_button.disabled
    other.cancel()
    assert job.active and "only its owner" in other._message.object
    gate["hold"] = False
    view.cancel()
    assert job.wait(10) and job.state == "cancelled"
    view.refresh()
    assert not view.resume_button.disabled and view.cancel_button.disabled
    # resume continues the loss plot where the cancelled job left it
    gate.update(go=False, hold=False)
    again = view.resume()
    assert again.meta["resumed_from"] == job.id and again.wait(10)
    view.refresh()
    assert np.asarray(view.src_median.data["x"]).max() > x.max()


def test_teacher_mode_may_cancel_any_job(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    monkeypatch.setenv("MOTHLAB_TEACHER", "1")
    runner = jobs.JobRunner()
    gate = {"go": False, "hold": True}
    monkeypatch.setattr(train, "train_job", _fake_train(gate))
    view = train.TrainView(runner=runner, owner="student")
    view.preset = "tiny"
    job = view.start()
    teacher = train.TrainView(runner=runner, owner="teacher")
    teacher.refresh()
    assert not teacher.cancel_button.disabled
    gate["hold"] = False
    teacher.cancel()
    assert job.wait(10) and job.state == "cancelled"


def test_queued_jobs_listed_and_cancelled_at_once(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    runner = jobs.JobRunner()
    gate = {"go": False, "hold": True}
    monkeypatch.setattr(train, "train_job", _fake_train(gate))
    a = train.TrainView(runner=runner, owner="a")
    a.preset = "tiny"
    first = a.start()
    a.run_name = "second"
    second = a.start()
    a.refresh()
    assert second.state == "queued" and "queued" in a.jobs_table.object
    assert a.watching == f"job {second.id}"
    a.cancel()
    assert second.state == "cancelled"  # left the queue at once, the first still runs
    assert first.active
    gate["hold"] = False
    runner.cancel(first.id, by="a")
    assert first.wait(10)


def test_partial_experiment_on_disk_can_be_resumed(tmp_path, monkeypatch, tiny_experiment):
    import shutil

    from mothlab import store
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    part = tmp_path / "left-behind.zarr"
    shutil.copytree(tiny_experiment, part)
    g, _ = store.open_store(part, "experiment", mode="r+", verify=False)
    store.update_header(g, complete=False, levels_done=1)
    seen = {}

    def recording_job(config, out):
        def fn(progress, cancel):
            seen["config"], seen["out"] = config, out
            return out

        return fn

    monkeypatch.setattr(train, "train_job", recording_job)
    view = train.TrainView(runner=jobs.JobRunner(), owner="a")
    key = f"disk {part}"
    assert key in view.param.watching.objects
    view.watching = key
    assert not view.resume_button.disabled and "unfinished" in view.status.object
    job = view.resume()
    assert job.wait(10) and seen["out"] == str(part)
    assert seen["config"].widths == [8, 8]


def test_estimate_refuses_what_the_machine_cannot_hold_and_asks_for_long_runs(
    tmp_path, monkeypatch
):
    from mothlab.nets import ExperimentConfig
    from mothlab.ui import estimate, train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    est = estimate.estimate_run(ExperimentConfig.preset("paper"))
    # the paper preset: 1,320 networks × 10 M steps-worth of batches is days on a CPU
    assert est.seconds > 3600 and est.bytes > 2**30 and est.rate > 0
    view = train.TrainView(runner=jobs.JobRunner(), owner="a")
    view.preset = "paper"
    monkeypatch.setattr(estimate, "available_bytes", lambda: (1e15, "test machine"))
    monkeypatch.setattr(
        train,
        "estimate_run",
        lambda cfg: estimate.Estimate(
            seconds=5 * 86400, bytes=1e9, available=1e15, device="CPU (test)", rate=1e9
        ),
    )
    assert view.start() is None
    assert "would take about" in view._message.object and view.start_button.label == "Start anyway"
    monkeypatch.setattr(
        train,
        "estimate_run",
        lambda cfg: estimate.Estimate(
            seconds=10, bytes=1e12, available=8e9, device="CPU (test)", rate=1e9
        ),
    )
    view.run_name = "too-big"
    assert view.start() is None
    assert "needs about" in view._message.object and view._message.alert_type == "danger"


def test_bad_training_input_is_a_message(tmp_path, monkeypatch):
    from mothlab.ui.train import TrainView

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    view = TrainView(runner=jobs.JobRunner(), owner="a")
    view.run_name = "bad name!"
    assert view.start() is None
    assert view._message.visible and "experiment name" in view._message.object
    view.run_name = "ok"
    view.cfg.schedule = [0.0, 1.5]
    assert view.start() is None and view._message.alert_type == "danger"
    assert "schedule" in view._message.object


def test_failing_job_shows_error(tmp_path, monkeypatch):
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))

    def broken(config, out):
        def fn(progress, cancel):
            raise ValueError("dataset is corrupted: regenerate it")

        return fn

    monkeypatch.setattr(train, "train_job", broken)
    view = train.TrainView(runner=jobs.JobRunner(), owner="a")
    view.preset = "tiny"
    job = view.start()
    assert job.wait(10)
    view.refresh()
    assert job.state == "failed" and "dataset is corrupted" in view.status.object


def test_real_tiny_training_job_appears_in_explorer(catalog_dir, monkeypatch):
    from synthetic import synthetic_splits

    from mothlab.nets import run_experiment
    from mothlab.ui import train
    from mothlab.ui.explorer import ExplorerView

    def job_on_synthetic(config, out):  # the real runner, minus dataset generation
        def fn(progress, cancel):
            run_experiment(
                config, out, progress=progress, cancel=cancel, data=synthetic_splits(seed=1)
            )
            common.catalog().add(out)
            return out

        return fn

    monkeypatch.setattr(train, "train_job", job_on_synthetic)
    view = train.TrainView(runner=jobs.JobRunner(), owner="a")
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


def test_mothlab_composes_tabs_and_builds_the_others_when_shown(catalog_dir):
    from mothlab.ui import MothLab
    from mothlab.ui.explorer import ExplorerView

    lab = MothLab()
    layout = lab.__panel__()
    assert [t for t in lab._tabs._names] == [
        "Flight",
        "Train & prune",
        "Sparsity explorer",
        "Motifs",
        "Fly",
    ]
    assert layout is not None and lab._views == {}  # only Flight built at first
    from mothlab.ui.train import TrainView

    lab.active = 1
    assert (
        isinstance(lab._views.get("Train & prune"), TrainView)
        and lab.train is lab._views["Train & prune"]
    )
    lab.active = 2
    assert isinstance(lab._views.get("Sparsity explorer"), ExplorerView)
    assert not isinstance(lab._tabs[2].objects[0], pn.pane.HTML)  # the placeholder is gone
    # the folder is shown in the page (under the home folder as ~/…, in full as a tooltip)
    shown = common.shown_path(common.experiments_dir())
    assert shown in layout[0].object and str(common.experiments_dir()) in layout[0].object
    assert common.shown_path(Path.home() / "mothlab-experiments") == "~/mothlab-experiments"
    assert common.shown_path("/srv/class/experiments") == "/srv/class/experiments"


def test_flight_view_frames_whole_flight_and_reads_time(flight):
    flight.setup.param.update(xd0=1057.0)  # a fast flight: 21 cm in 20 ms
    try:
        s = flight.shapes
        pts = np.concatenate([s.head.reshape(-1, 2), s.abdomen.reshape(-1, 2), s.thrust_end])
        xr, yr = flight.fig_moth.x_range, flight.fig_moth.y_range
        assert xr.start <= pts[:, 0].min() and pts[:, 0].max() <= xr.end
        assert yr.start <= pts[:, 1].min() and pts[:, 1].max() <= yr.end
        # a fixed aspect: equal spans on a square frame, on explicit ranges (the browser
        # recomputes a DataRange1d from the data, ignoring what the server sets)
        from bokeh.models import Range1d

        assert isinstance(xr, Range1d) and isinstance(yr, Range1d)
        assert flight.fig_moth.frame_width == flight.fig_moth.frame_height
        assert (xr.end - xr.start) == pytest.approx(yr.end - yr.start)
        flight.frame = 20
        assert f"t = {flight.times[20]:.1f} ms" in flight.time_readout.object
    finally:
        flight.setup.xd0 = 0.0


def test_state_plots_follow_the_flight_without_drawing_round_off(flight):
    from mothlab.ui.flight import MIN_SPANS

    flight.preset = "hover"  # x stays at 0 up to round-off
    for fig, min_span in zip(flight.state_figs, MIN_SPANS):
        assert fig.y_range.end - fig.y_range.start >= min_span * 0.999
    flight.preset = "pitch-up"  # then every curve stays inside its plot
    for (src, _, _), fig in zip(flight.state_sources, flight.state_figs):
        vals = np.concatenate([src.data["a"], src.data["b"]])
        assert fig.y_range.start <= vals.min() and vals.max() <= fig.y_range.end


def test_body_sliders_are_built_when_their_tab_is_shown(flight):
    from mothlab.ui.flight import BODY_PARAMS

    layout = flight.__panel__()
    inner = next(t for t in layout.select(pn.Tabs) if "Body (S1)" in t._names)
    slot = inner[1]
    assert slot.objects == []  # a lighter first page: nothing built yet
    inner.active = 1
    names = {w.name for w in slot.select(pn.widgets.Widget)}
    assert {flight.body.param[p].label for p in BODY_PARAMS} <= names
    label = flight.body.param["K"].label
    slider = next(w for w in slot.select(pn.widgets.Widget) if w.name == label)
    before = flight.n_draws
    slider.value = 24000.0  # a body slider still flies the moth
    try:
        assert flight.body.K == 24000.0 and flight.n_draws == before + 1
    finally:
        flight.body.K = 23000.0


def test_loss_plot_x_is_steps_with_level_marks_continued_across_resume(tmp_path, monkeypatch):
    """A job cancelled in level 1, resumed: the resumed job redoes level 1 from step 0 (the store
    keeps finished levels only). The plot then shows level 0 from the first job and levels 1-2
    from the second, on one step axis that never runs back, with a mark at each level's start;
    the status says the ETA is known after the first level, then shows the runner's."""
    from mothlab.progress import Cancelled, report
    from mothlab.ui import train

    monkeypatch.setenv("MOTHLAB_EXPERIMENTS", str(tmp_path))
    runner = jobs.JobRunner()
    gate = {"open": False}

    def levels(progress, cancel, todo, stop_at=None):
        report(progress, 0.0, "opening the store", level=-1, n_levels=3)
        for lv in todo:
            for step in range(0, 101, 20):
                if (lv, step) == stop_at:
                    raise Cancelled("cancelled")
                report(
                    progress,
                    (lv + step / 100) / 3,
                    f"level {lv} step {step}",
                    level=lv,
                    sparsity=[0.0, 0.5, 0.75][lv],
                    step=step,
                    losses=[10.0 ** -(lv + step / 100)] * 2,
                    eta_s=None if lv == 0 else 30.0,
                )
                while lv == 0 and step == 40 and not gate["open"]:
                    time.sleep(0.01)
        return "done"

    view = train.TrainView(runner=runner, owner="alice")
    first = runner.submit(
        lambda progress, cancel: levels(progress, cancel, [0, 1], stop_at=(1, 60)),
        name="run",
        kind="train",
        owner="alice",
        meta={"out": str(tmp_path / "run.zarr"), "config": view.cfg.to_dict()},
    )
    view.refresh()
    view.watching = f"job {first.id}"
    assert wait_for(lambda: first.snapshot()["payload"].get("step") == 40)
    view.refresh()
    assert "known after the first level" in view.status.object  # no made-up ETA in level 0
    gate["open"] = True
    assert first.wait(10) and first.state == "cancelled"
    second = runner.submit(
        lambda progress, cancel: levels(progress, cancel, [1, 2]),
        name="run",
        kind="train",
        owner="alice",
        meta={**first.meta, "resumed_from": first.id},
    )
    assert second.wait(10)
    view.refresh()
    view.watching = f"job {second.id}"
    view.refresh()
    x = np.asarray(view.src_median.data["x"])
    assert np.all(np.diff(x) >= 0)  # one axis of training steps, never running back
    assert list(view.src_levels.data["x"]) == [0.0, 100.0, 200.0]
    assert list(view.src_levels.data["label"]) == ["0%", "50%", "75%"]
    assert x.tolist() == [0, 20, 40, 60, 80, 100] + [100 + s for s in range(0, 101, 20)] + [
        200 + s for s in range(0, 101, 20)
    ]
    # level 1 is drawn from the resumed job only (the cancelled job's 0-40 steps are gone)
    med = np.asarray(view.src_median.data["y"])
    assert med[6] == pytest.approx(10.0**-1) and med[-1] == pytest.approx(10.0**-3)


def wait_for(fn, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.01)
    return bool(fn())
