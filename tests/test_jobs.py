"""mothlab.jobs: two pools on concurrent.futures, Progress snapshots, owner/teacher cancel,
cancelled queued jobs leave at once, failures captured, bounded loss history."""

import threading
import time

import numpy as np
import pytest

from mothlab import jobs
from mothlab.jobs import JobRunner
from mothlab.progress import Cancelled, Progress, check_cancel, report

SNAPSHOT_KEYS = {
    "id",
    "name",
    "kind",
    "owner",
    "state",
    "fraction",
    "message",
    "payload",
    "elapsed_s",
    "eta_s",
    "error",
    "meta",
    "created",
    "started",
    "finished",
}


def wait_until(cond, timeout=10.0):
    t = time.time() + timeout
    while not cond():
        if time.time() > t:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def test_done_result_snapshot_fields_and_history():
    r = JobRunner()

    def fn(progress, cancel):
        report(progress, 0.0, "preparing", losses=None)  # not a loss payload
        for i in range(4):
            report(progress, (i + 1) / 4, f"level {i}", level=i, losses=np.full(3, 0.1 * i))
        return "ok"

    job = r.submit(fn, name="four levels", kind="train", owner="s1", meta={"out": "x.zarr"})
    assert job.wait(10)
    snap = job.snapshot()
    assert SNAPSHOT_KEYS <= set(snap)
    assert snap["state"] == "done" and job.result == "ok" and snap["owner"] == "s1"
    assert snap["fraction"] == 1.0 and snap["eta_s"] == 0.0 and snap["message"] == "level 3"
    assert snap["payload"]["level"] == 3
    assert snap["payload"]["losses"] == pytest.approx([0.3] * 3)
    assert isinstance(snap["payload"]["losses"], list)  # arrays copied to plain lists
    assert snap["meta"] == {"out": "x.zarr"} and snap["error"] is None
    assert snap["created"] <= snap["started"] <= snap["finished"]
    hist = job.history()
    assert [h["level"] for h in hist] == [0, 1, 2, 3]
    assert all(h["t"] >= 0 for h in hist) and hist == sorted(hist, key=lambda h: h["t"])
    assert r.latest("train") is job and r.active() == [] and r.get(job.id) is job


def test_only_progress_events_are_accepted():
    r = JobRunner()
    job = r.submit(
        lambda progress, cancel: progress({"done": 1, "total": 2}), name="dict", kind="x", owner="a"
    )
    assert job.wait(10) and job.state == "failed" and "Progress" in job.error


def test_running_snapshot_fraction_and_honest_eta():
    r = JobRunner()
    gate, gate2, step = threading.Event(), threading.Event(), threading.Event()

    def fn(progress, cancel):
        report(progress, 0.1, "a tenth")
        step.set()
        gate.wait(10)
        report(progress, 0.5, "half", eta_s=7.5)  # the function's own estimate wins
        step.set()
        gate2.wait(10)

    job = r.submit(fn, name="f", kind="x", owner="a")
    assert step.wait(10)
    snap = job.snapshot()
    assert snap["state"] == "running" and snap["fraction"] == pytest.approx(0.1)
    assert snap["eta_s"] is None  # one event, no movement yet: no guess
    step.clear()
    gate.set()
    assert step.wait(10)
    assert job.snapshot()["eta_s"] == pytest.approx(7.5)
    gate2.set()
    assert job.wait(10)


def test_owner_cancel_others_refused_teacher_overrides():
    r = JobRunner()
    started = threading.Event()

    def fn(progress, cancel):
        started.set()
        for _ in range(5000):
            check_cancel(cancel, "resume later")
            time.sleep(0.002)
        return "finished"

    job = r.submit(fn, name="long", kind="train", owner="alice")
    assert started.wait(10)
    with pytest.raises(PermissionError, match="alice"):
        r.cancel(job.id, by="bob")
    assert not job.cancelled() and job.state == "running"
    r.cancel(job.id, by="bob", teacher=True)
    assert job.wait(10)
    assert job.state == "cancelled" and job.result is None and "resume later" in job.error
    job2 = r.submit(fn, name="long2", kind="train", owner="alice")
    assert started.wait(10)
    r.cancel(job2.id, by="alice")
    assert job2.wait(10) and job2.state == "cancelled"


def test_cancelled_queued_job_is_cancelled_at_once_and_never_starts():
    r = JobRunner()
    gate = threading.Event()
    started = []

    def blocker(progress, cancel):
        started.append("a")
        gate.wait(10)

    a = r.submit(blocker, name="a", kind="train", owner="s")
    b = r.submit(lambda progress, cancel: started.append("b"), name="b", kind="train", owner="s")
    wait_until(lambda: a.state == "running")
    assert b.state == "queued" and b.snapshot()["fraction"] is None
    r.cancel(b.id, by="s")
    assert b.state == "cancelled" and b.wait(0)  # at once, while a still runs
    gate.set()
    assert a.wait(10)
    time.sleep(0.02)
    assert started == ["a"] and a.state == "done"


def test_two_pools_do_not_starve_each_other():
    r = JobRunner()
    gate = threading.Event()
    train = r.submit(lambda progress, cancel: gate.wait(10), name="t", kind="train", owner="s")
    queued = r.submit(lambda progress, cancel: 1, name="t2", kind="train", owner="s")
    motifs = r.submit(
        lambda progress, cancel: "z", name="m", kind="motifs", owner="s", pool="analysis"
    )
    assert motifs.wait(10) and motifs.result == "z"  # ran while training holds its pool
    assert train.state == "running" and queued.state == "queued"
    gate.set()
    assert queued.wait(10) and queued.state == "done"
    assert [j.name for j in r.jobs()] == ["m", "t2", "t"]  # newest first
    assert [j.name for j in r.jobs("train")] == ["t2", "t"]


def test_failure_is_captured_and_runner_keeps_working():
    r = JobRunner()

    def bad(progress, cancel):
        raise ValueError("dataset has 3 samples; need at least 10")

    job = r.submit(bad, name="bad", kind="x", owner="a")
    assert job.wait(10)
    assert job.state == "failed"
    assert "ValueError" in job.error and "need at least 10" in job.error
    assert "Traceback" in job.traceback
    ok = r.submit(lambda progress, cancel: 1, name="after", kind="x", owner="a")
    assert ok.wait(10) and ok.state == "done"


def test_listeners_and_version():
    r = JobRunner()
    seen = []
    r.on_finish(lambda job: seen.append(job.id))
    v0 = r.version
    job = r.submit(lambda progress, cancel: None, name="x", kind="x", owner="a")
    job.wait(10)
    wait_until(lambda: seen == [job.id])
    assert r.version >= v0 + 2


def test_bad_arguments():
    r = JobRunner()
    with pytest.raises(ValueError, match="callable"):
        r.submit(3, name="x", kind="x", owner="a")
    with pytest.raises(ValueError, match="owner"):
        r.submit(lambda progress, cancel: 1, name="x", kind="x", owner="")
    with pytest.raises(ValueError, match="pool"):
        r.submit(lambda progress, cancel: 1, name="x", kind="x", owner="a", pool="gpu")
    with pytest.raises(ValueError, match="No job with id 99"):
        r.get(99)


def test_process_wide_runner_is_shared():
    assert jobs.runner() is jobs.runner()


def test_history_is_bounded_and_keeps_the_whole_curve():
    r = JobRunner()

    def fn(progress, cancel):
        for i in range(jobs.HISTORY * 2):
            progress(Progress(i / (2 * jobs.HISTORY), "", {"step": i, "losses": [1.0 / (i + 1)]}))

    job = r.submit(fn, name="many", kind="train", owner="a")
    assert job.wait(30)
    steps = [h["step"] for h in job.history()]
    assert len(steps) <= jobs.HISTORY
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == jobs.HISTORY * 2 - 1


def test_cancelled_exception_from_library_function_means_cancelled():
    r = JobRunner()

    def fn(progress, cancel):
        raise Cancelled("cancelled; resume with: mothlab train ... --resume")

    job = r.submit(fn, name="c", kind="train", owner="a")
    assert job.wait(10) and job.state == "cancelled" and "resume" in job.error


def test_eta_extrapolates_only_after_real_movement(monkeypatch):
    monkeypatch.setattr(jobs, "_ETA_MIN_SECONDS", 0.05)
    r = JobRunner()
    gate, step = threading.Event(), threading.Event()

    def fn(progress, cancel):
        report(progress, 0.2, "")
        time.sleep(0.1)
        report(progress, 0.4, "")
        step.set()
        gate.wait(10)

    job = r.submit(fn, name="eta", kind="x", owner="a")
    assert step.wait(10)
    eta = job.snapshot()["eta_s"]
    # 0.2 of the work took ~0.1 s, 0.6 remains: about 0.3 s (generous bounds for a loaded box)
    assert eta is not None and 0.1 < eta < 3.0
    gate.set()
    assert job.wait(10)


def test_process_exits_promptly_with_a_running_job():
    """concurrent.futures joins its workers at exit; the runner cancels its jobs first, so a
    process with a running (cancel-aware) job leaves at once instead of waiting for it."""
    import subprocess
    import sys

    code = (
        "import time\nfrom mothlab import jobs\nfrom mothlab.progress import check_cancel\n"
        "def fn(progress, cancel):\n    for _ in range(100000):\n"
        "        check_cancel(cancel); time.sleep(0.01)\n"
        "job = jobs.runner().submit(fn, name='long', kind='train', owner='cli')\n"
        "time.sleep(0.2)\nprint(job.state)\n"
    )
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "running" and time.time() - t0 < 30  # the job alone: 1000 s
