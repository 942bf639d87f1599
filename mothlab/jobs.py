"""Background jobs shared by the CLI and the app: a thread, a progress snapshot, a cancel flag.

The library's long-running functions (``run_experiment``, ``analyse_experiment``,
``generate_dataset``) take two plain callables, ``progress`` and ``cancel``. A :class:`Job` supplies
both: ``progress`` merges each event into a snapshot dict (read by any thread at any time, e.g. a
Panel periodic callback in every browser session), and ``cancel`` returns True once someone asked
the job to stop; the library checks it between compiled chunks and leaves a resumable store.

Jobs belong to the process (:func:`runner` returns the process-wide :class:`JobRunner`), so in
``panel serve`` every session, every reload and every second tab sees the same jobs. Nothing here
imports JAX or Panel.

>>> r = JobRunner(max_running=1)
>>> job = r.submit(lambda progress, cancel: progress({"message": "hi"}) or 42, name="demo")
>>> job.wait(5.0)
True
>>> job.state, job.result, job.snapshot()["message"]
('done', 42, 'hi')
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)

#: Keys of a progress event kept as a time series (for live loss curves), at most HISTORY points.
HISTORY = 4000


class JobCancelled(Exception):
    """Raised by a job's function to say it stopped because it was asked to."""


def _plain(value):
    """A JSON-friendly copy of a progress value (numpy arrays → lists) so views never hold
    references into arrays the worker thread may still be writing."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Job:
    """One background task.

    Attributes
    ----------
    id : int, unique in the process.
    name : str, shown to users. kind : str, e.g. ``"train"`` or ``"motifs"``.
    meta : dict, anything the submitter wants to find again (e.g. the output path).
    state : one of ``queued``, ``running``, ``done``, ``failed``, ``cancelled``.
    error : str or None, a one-line message when the job failed.
    result : what the function returned (when done).
    """

    def __init__(self, fn: Callable[..., Any], *, id: int, name: str, kind: str = "job",
                 meta: dict | None = None):
        self.id = id
        self.name = name
        self.kind = kind
        self.meta = dict(meta or {})
        self.state = QUEUED
        self.error: str | None = None
        self.traceback: str | None = None
        self.result: Any = None
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self._fn = fn
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._snapshot: dict[str, Any] = {}
        self._history: list[dict[str, Any]] = []
        self._n_events = 0
        self.thread: threading.Thread | None = None

    # -- callables handed to the library ----------------------------------------------------
    def progress(self, *args, **kwargs) -> None:
        """Record a progress event. Accepts a dict event (``progress({...})``), keyword fields, or
        ``progress(done, total)`` as ``simulate``/``generate_dataset`` call it."""
        if len(args) == 1 and isinstance(args[0], dict):
            event = dict(args[0])
        elif len(args) == 2:
            event = {"done": args[0], "total": args[1]}
        elif len(args) == 1:
            event = {"message": str(args[0])}
        else:
            event = {}
        event.update(kwargs)
        event = _plain(event)
        with self._lock:
            self._n_events += 1
            self._snapshot.update(event)
            self._snapshot["time"] = time.time()
            self._snapshot["fraction"] = self._fraction(self._snapshot)
            point = {k: event[k] for k in ("level", "sparsity", "step", "losses", "train_losses")
                     if k in event}
            if point.get("losses") is not None and len(point["losses"] or []) > 0:
                point["t"] = time.time() - (self.started or self.created)
                self._history.append(point)
                if len(self._history) > HISTORY:
                    # keep every other old point: a long run still shows its whole curve
                    self._history = self._history[:HISTORY // 2:2] + self._history[HISTORY // 2:]

    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called (the library polls this between chunks)."""
        return self._cancel.is_set()

    # -- control -----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop; a queued job never starts."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (True) or the timeout passed (False)."""
        return self._done.wait(timeout)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in (QUEUED, RUNNING)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the latest progress merged with the job's state: safe to read from any thread.

        Keys always present: id, name, kind, state, error, fraction (0–1 or None), elapsed_s,
        eta_s (None when unknown), n_events, meta; plus the library's latest event fields.
        """
        with self._lock:
            snap = dict(self._snapshot)
            n = self._n_events
        now = time.time()
        elapsed = ((self.finished or now) - self.started) if self.started else 0.0
        snap.update(id=self.id, name=self.name, kind=self.kind, state=self.state,
                    error=self.error, elapsed_s=elapsed, n_events=n, meta=dict(self.meta))
        snap.setdefault("fraction", None)
        if self.state == DONE:
            snap["fraction"] = 1.0
        if "eta_s" not in snap or snap["eta_s"] is None:
            frac = snap["fraction"]
            snap["eta_s"] = (elapsed * (1 - frac) / frac) if frac and self.state == RUNNING \
                else None
        if self.state in FINISHED:
            snap["eta_s"] = 0.0
        return snap

    def history(self) -> list[dict[str, Any]]:
        """The loss events seen so far (level, step, losses, ...), oldest first (a copy)."""
        with self._lock:
            return list(self._history)

    @staticmethod
    def _fraction(s: dict) -> float | None:
        if "n_levels" in s and "level" in s and s["n_levels"]:
            within = 0.0
            if s.get("max_steps") and s.get("step") is not None:
                within = min(1.0, s["step"] / s["max_steps"])
            # level −1: preparing (e.g. generating the dataset) before the first level
            return min(1.0, max(0.0, (s["level"] + within) / s["n_levels"]))
        if "total" in s and "done" in s and s["total"]:
            return min(1.0, max(0.0, s["done"] / s["total"]))
        return s.get("fraction")

    # -- the thread --------------------------------------------------------------------------
    def _run(self, slots: threading.Semaphore, on_finish: Callable[[Job], None]) -> None:
        with slots:
            if self._cancel.is_set():
                self._finish(CANCELLED, on_finish)
                return
            self.started = time.time()
            self.state = RUNNING
            try:
                result = self._fn(progress=self.progress, cancel=self.cancelled)
            except JobCancelled:
                self._finish(CANCELLED, on_finish)
            except BaseException as err:  # noqa: BLE001 - a job must never take the server down
                self.error = f"{type(err).__name__}: {err}"
                self.traceback = traceback.format_exc()
                self._finish(FAILED, on_finish)
            else:
                self.result = result
                self._finish(CANCELLED if self._cancel.is_set() else DONE, on_finish)

    def _finish(self, state: str, on_finish) -> None:
        self.state = state
        self.finished = time.time()
        if self.started is None:
            self.started = self.finished
        self._done.set()
        try:
            on_finish(self)
        except Exception:  # noqa: BLE001 - listeners must not break the runner
            traceback.print_exc()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} {self.state}>"


class JobRunner:
    """A process-wide registry of background jobs.

    Parameters
    ----------
    max_running : how many jobs run at once; the rest wait queued (JAX already uses every core,
        so running two trainings side by side only makes both slower).
    """

    def __init__(self, max_running: int = 1):
        if int(max_running) < 1:
            raise ValueError(f"max_running must be >= 1; got {max_running}.")
        self._slots = threading.Semaphore(int(max_running))
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Job], None]] = []
        self.version = 0  # bumped on every submit/finish: views poll it to know when to refresh

    def submit(self, fn: Callable[..., Any], *, name: str, kind: str = "job",
               meta: dict | None = None) -> Job:
        """Start ``fn(progress=..., cancel=...)`` in a daemon thread and return its :class:`Job`.

        ``fn`` may raise :class:`JobCancelled` (or simply return) when ``cancel()`` turns True.
        """
        if not callable(fn):
            raise ValueError(f"fn must be callable; got {type(fn).__name__}.")
        with self._lock:
            job = Job(fn, id=next(self._ids), name=name, kind=kind, meta=meta)
            self._jobs[job.id] = job
            self.version += 1
        job.thread = threading.Thread(target=job._run, args=(self._slots, self._finished),
                                      name=f"mothlab-job-{job.id}", daemon=True)
        job.thread.start()
        return job

    def _finished(self, job: Job) -> None:
        with self._lock:
            self.version += 1
            listeners = list(self._listeners)
        for fn in listeners:
            fn(job)

    def on_finish(self, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` (in the job's thread) whenever a job finishes."""
        with self._lock:
            self._listeners.append(fn)

    def jobs(self, kind: str | None = None) -> list[Job]:
        """All jobs (newest last), optionally of one kind."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if kind is None or j.kind == kind]

    def active(self, kind: str | None = None) -> list[Job]:
        """Queued or running jobs."""
        return [j for j in self.jobs(kind) if j.active]

    def get(self, job_id: int) -> Job:
        try:
            return self._jobs[int(job_id)]
        except KeyError:
            raise ValueError(f"No job with id {job_id}; known ids: "
                             f"{sorted(self._jobs) or 'none'}.") from None

    def latest(self, kind: str | None = None) -> Job | None:
        jobs = self.jobs(kind)
        return jobs[-1] if jobs else None

    def cancel_all(self) -> None:
        for job in self.active():
            job.cancel()


_RUNNER: JobRunner | None = None
_RUNNER_LOCK = threading.Lock()


def runner() -> JobRunner:
    """The process-wide :class:`JobRunner` (created on first use)."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = JobRunner()
        return _RUNNER
