"""mothlab.jobs: threads, progress snapshots, cancel, failures, the process-wide registry."""

import threading
import time

import numpy as np
import pytest

from mothlab import jobs
from mothlab.jobs import JobCancelled, JobRunner


def test_done_result_and_snapshot():
    r = JobRunner()
    events = [{"level": i, "n_levels": 4, "step": 0, "losses": np.full(3, 0.1 * i),
               "eta_s": 4.0 - i} for i in range(4)]

    def fn(progress, cancel):
        for e in events:
            progress(e)
        return "ok"

    job = r.submit(fn, name="four levels", kind="train", meta={"out": "x.zarr"})
    assert job.wait(10)
    snap = job.snapshot()
    assert job.state == "done" and job.result == "ok"
    assert snap["state"] == "done" and snap["fraction"] == 1.0 and snap["eta_s"] == 0.0
    assert snap["level"] == 3 and snap["losses"] == pytest.approx([0.3] * 3)
    assert isinstance(snap["losses"], list)  # arrays copied to plain lists
    assert snap["meta"] == {"out": "x.zarr"} and snap["n_events"] == 4
    hist = job.history()
    assert [h["level"] for h in hist] == [0, 1, 2, 3]
    assert r.latest("train") is job and r.active() == [] and r.get(job.id) is job


def test_fraction_from_levels_and_from_done_total():
    r = JobRunner()
    gate = threading.Event()
    seen = threading.Event()

    def fn(progress, cancel):
        progress({"level": 1, "n_levels": 4})
        seen.set()
        gate.wait(10)
        progress(30, 40)  # simulate-style (done, total)
        return None

    job = r.submit(fn, name="f")
    assert seen.wait(10)
    snap = job.snapshot()
    assert snap["state"] == "running" and snap["fraction"] == pytest.approx(0.25)
    assert snap["eta_s"] is not None and snap["eta_s"] >= 0
    gate.set()
    assert job.wait(10)


def test_cancel_running_job_stops_between_chunks():
    r = JobRunner()
    chunks = []

    def fn(progress, cancel):
        for i in range(1000):
            if cancel():
                raise JobCancelled()
            chunks.append(i)
            progress({"step": i})
            time.sleep(0.005)
        return "finished"

    job = r.submit(fn, name="long")
    while not chunks:
        time.sleep(0.005)
    job.cancel()
    assert job.wait(10)
    assert job.state == "cancelled" and job.result is None
    assert len(chunks) < 1000


def test_cancel_by_returning_early_counts_as_cancelled():
    r = JobRunner()

    def fn(progress, cancel):
        while not cancel():
            time.sleep(0.002)
        return "partial"

    job = r.submit(fn, name="polite")
    time.sleep(0.02)
    job.cancel()
    assert job.wait(10) and job.state == "cancelled"


def test_failure_is_captured_and_runner_keeps_working():
    r = JobRunner()

    def bad(progress, cancel):
        raise ValueError("dataset has 3 samples; need at least 10")

    job = r.submit(bad, name="bad")
    assert job.wait(10)
    assert job.state == "failed"
    assert "ValueError" in job.error and "need at least 10" in job.error
    assert "Traceback" in job.traceback
    ok = r.submit(lambda progress, cancel: 1, name="after")
    assert ok.wait(10) and ok.state == "done"


def test_queue_runs_one_at_a_time_and_cancelled_queued_job_never_starts():
    r = JobRunner(max_running=1)
    gate = threading.Event()
    started = []

    def blocker(progress, cancel):
        started.append("a")
        gate.wait(10)

    def second(progress, cancel):
        started.append("b")

    a = r.submit(blocker, name="a")
    b = r.submit(second, name="b")
    time.sleep(0.05)
    assert b.state == "queued" and started == ["a"]
    b.cancel()
    gate.set()
    assert a.wait(10) and b.wait(10)
    assert b.state == "cancelled" and started == ["a"]


def test_listeners_and_version():
    r = JobRunner()
    seen = []
    r.on_finish(lambda job: seen.append(job.id))
    v0 = r.version
    job = r.submit(lambda progress, cancel: None, name="x")
    job.wait(10)
    time.sleep(0.01)
    assert seen == [job.id] and r.version >= v0 + 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_running"):
        JobRunner(max_running=0)
    with pytest.raises(ValueError, match="callable"):
        JobRunner().submit(3, name="x")
    with pytest.raises(ValueError, match="No job with id 99"):
        JobRunner().get(99)


def test_process_wide_runner_is_shared():
    assert jobs.runner() is jobs.runner()


def test_history_is_bounded():
    r = JobRunner()

    def fn(progress, cancel):
        for i in range(jobs.HISTORY * 2):
            progress({"step": i, "losses": [1.0 / (i + 1)]})

    job = r.submit(fn, name="many")
    assert job.wait(30)
    hist = job.history()
    assert len(hist) <= jobs.HISTORY
    steps = [h["step"] for h in hist]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == jobs.HISTORY * 2 - 1


def test_events_without_losses_stay_out_of_history():
    r = JobRunner()

    def fn(progress, cancel):
        progress({"level": -1, "losses": None, "message": "generating dataset"})
        progress({"level": 0, "losses": [0.5, 0.4]})

    job = r.submit(fn, name="gen")
    assert job.wait(10)
    assert [h["losses"] for h in job.history()] == [[0.5, 0.4]]
    assert job.snapshot()["message"] == "generating dataset"


def test_fraction_is_clamped_while_preparing():
    r = JobRunner()
    gate = threading.Event()

    def fn(progress, cancel):
        progress({"level": -1, "n_levels": 3, "losses": None})
        gate.wait(10)

    job = r.submit(fn, name="prep")
    time.sleep(0.1)
    assert job.snapshot()["fraction"] == 0.0
    gate.set()
    assert job.wait(10)
