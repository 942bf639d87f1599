"""Background jobs of the process: two worker pools, progress snapshots, cancel, an owner.

Long library functions (``run_experiment``, ``generate_dataset``, ``analyse_experiment``, the fly
studies) take ``progress`` and ``cancel`` keywords (:mod:`mothlab.progress`). A :class:`Job` runs
``fn(progress=..., cancel=...)`` on a :class:`concurrent.futures.ThreadPoolExecutor` and supplies
both: ``progress`` keeps the latest :class:`~mothlab.progress.Progress` event as a snapshot that
any thread may read at any time (a Panel periodic callback in every browser session), and
``cancel`` turns True once the job's owner (or a teacher) asked it to stop; the function then
leaves a resumable store and raises :class:`~mothlab.progress.Cancelled`.

Two pools of one worker each: ``"train"`` (training, datasets) and ``"analysis"`` (motif analyses,
fly studies), so an analysis never waits behind a long training and neither starves the other;
one worker per pool because JAX already uses every core. Jobs belong to the process
(:func:`runner`), so in ``panel serve`` every session, reload and tab sees the same jobs; a
session may cancel only the jobs it owns unless the server runs in teacher mode. Nothing here
imports JAX or Panel.

>>> from mothlab.progress import report
>>> r = JobRunner()
>>> job = r.submit(lambda progress, cancel: report(progress, 0.5, "half") or 42, name="demo",
...                kind="demo", owner="me")
>>> job.wait(5.0)
True
>>> job.state, job.result, job.snapshot()["message"]
('done', 42, 'half')
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from mothlab.progress import Cancelled, Progress

__all__ = [
    "Job",
    "JobRunner",
    "runner",
    "POOLS",
    "STATES",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "DONE",
    "FAILED",
    "CANCELLED",
    "HISTORY",
]

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED = (DONE, FAILED, CANCELLED)

POOLS = {
    "train": "training and datasets (one at a time)",
    "analysis": "motif analyses and fly studies (one at a time, beside training)",
}
"""Worker pools: name → what runs there. Each has one worker."""

HISTORY = 4000
"""Most loss payloads a job keeps (older ones are thinned, so a long run keeps its whole curve)."""

#: an ETA is shown only after the fraction has moved this much over this many seconds
_ETA_MIN_FRACTION, _ETA_MIN_SECONDS = 0.01, 2.0


def _plain(value):
    """A JSON-friendly copy (numpy arrays → lists, numpy scalars → Python) so views never hold
    references into arrays the worker thread may still be writing."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Job:
    """One background task (made by :meth:`JobRunner.submit`).

    Attributes: ``id`` (unique in the process), ``name``, ``kind`` (e.g. ``"train"``,
    ``"motifs"``), ``owner`` (who may cancel it), ``pool``, ``meta`` (anything the submitter wants
    to find again), ``state`` (:data:`STATES`), ``error`` (one line when failed), ``traceback``,
    ``result`` (when done), ``created``/``started``/``finished`` (epoch seconds or None).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        id: int,
        name: str,
        kind: str,
        owner: str,
        pool: str,
        meta: dict | None = None,
    ):
        self.id, self.name, self.kind, self.owner, self.pool = id, name, kind, owner, pool
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
        self._future: concurrent.futures.Future | None = None
        self._last = Progress(None)
        self._payload: dict[str, Any] = {}
        self._first: tuple[float, float] | None = None  # (time, fraction) of the first fraction
        self._history: list[dict[str, Any]] = []
        self._n_events = 0

    # -- the callables handed to the library -------------------------------------------------
    def progress(self, event: Progress) -> None:
        """Record one :class:`~mothlab.progress.Progress` event (the job's ``progress``)."""
        if not isinstance(event, Progress):
            raise TypeError(
                "a job's progress takes mothlab.progress.Progress events (use "
                f"mothlab.progress.report); got {type(event).__name__}"
            )
        payload = _plain(dict(event.payload))
        now = time.time()
        with self._lock:
            self._n_events += 1
            self._last, self._payload = event, payload
            if event.fraction is not None and self._first is None:
                self._first = (now, event.fraction)
            if payload.get("losses") is not None:
                self._history.append(dict(payload, t=now - (self.started or self.created)))
                if len(self._history) > HISTORY:
                    # keep every other old point: a long run still shows its whole curve
                    self._history = (
                        self._history[: HISTORY // 2 : 2] + self._history[HISTORY // 2 :]
                    )

    def cancelled(self) -> bool:
        """True once a cancel was asked for (the library polls this between chunks)."""
        return self._cancel.is_set()

    # -- reading --------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (True) or the timeout passed (False)."""
        return self._done.wait(timeout)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in (QUEUED, RUNNING)

    def snapshot(self) -> dict[str, Any]:
        """The job's state and latest progress, plain JSON types, safe to read from any thread.

        Keys: id, name, kind, owner, pool, state, fraction (0..1 or None), message, payload (the
        latest event's), elapsed_s, eta_s (None until honest: the event's own ``eta_s``, else a
        linear extrapolation once the fraction moved ≥ 1 % over ≥ 2 s), error, meta, created,
        started, finished, n_events.
        """
        with self._lock:
            ev, payload, first, n = self._last, dict(self._payload), self._first, self._n_events
            state, started, finished = self.state, self.started, self.finished
        now = time.time()
        elapsed = ((finished or now) - started) if started else 0.0
        fraction = 1.0 if state == DONE else ev.fraction
        eta = None
        if state in FINISHED:
            eta = 0.0
        elif state == RUNNING:
            if isinstance(payload.get("eta_s"), (int, float)):
                eta = max(0.0, float(payload["eta_s"]))
            elif fraction is not None and first is not None:
                df, dt = fraction - first[1], now - first[0]
                if df >= _ETA_MIN_FRACTION and dt >= _ETA_MIN_SECONDS:
                    eta = (1.0 - fraction) * dt / df
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "pool": self.pool,
            "state": state,
            "fraction": fraction,
            "message": ev.message,
            "payload": payload,
            "elapsed_s": elapsed,
            "eta_s": eta,
            "error": self.error,
            "meta": _plain(self.meta),
            "created": self.created,
            "started": started,
            "finished": finished,
            "n_events": n,
        }

    def history(self) -> list[dict[str, Any]]:
        """The payloads that carried ``"losses"``, oldest first, each with ``"t"`` (seconds since
        the job started); a copy."""
        with self._lock:
            return [dict(h) for h in self._history]

    # -- running (in a pool's worker thread) ------------------------------------------------------
    def _run(self, on_finish: Callable[[Job], None]) -> None:
        with self._lock:
            if self.state != QUEUED:
                return  # cancelled while queued: finished already
            if not self._cancel.is_set():
                self.state, self.started = RUNNING, time.time()
        if self.state == QUEUED:  # cancelled between being picked and starting
            self._finish(CANCELLED, on_finish)
            return
        try:
            result = self._fn(progress=self.progress, cancel=self.cancelled)
        except Cancelled as err:
            self.error = str(err) or None
            self._finish(CANCELLED, on_finish)
        except BaseException as err:  # noqa: BLE001 - a job must never take the server down
            self.error = f"{type(err).__name__}: {err}"
            self.traceback = traceback.format_exc()
            self._finish(FAILED, on_finish)
        else:
            self.result = result  # a function that returns has finished its work
            self._finish(DONE, on_finish)

    def _finish(self, state: str, on_finish) -> None:
        with self._lock:
            if self.state in FINISHED:
                return
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
        return f"<Job {self.id} {self.name!r} {self.kind} of {self.owner!r}: {self.state}>"


class JobRunner:
    """The jobs of a process, run on one :class:`~concurrent.futures.ThreadPoolExecutor` of one
    worker per pool (:data:`POOLS`)."""

    def __init__(self):
        self._pools = {
            name: concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"mothlab-{name}"
            )
            for name in POOLS
        }
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Job], None]] = []
        self.version = 0  # bumped on every submit/finish: views poll it to know when to refresh

    def submit(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        kind: str,
        owner: str,
        meta: dict | None = None,
        pool: str = "train",
    ) -> Job:
        """Queue ``fn(progress=..., cancel=...)`` on ``pool`` and return its :class:`Job`.

        ``fn`` reports with :class:`~mothlab.progress.Progress` events and raises
        :class:`~mothlab.progress.Cancelled` when ``cancel()`` turned True. ``owner`` (e.g. a
        session id, or "cli") is who may cancel it.
        """
        if not callable(fn):
            raise ValueError(f"fn must be callable; got {type(fn).__name__}.")
        for what, value in (("name", name), ("kind", kind), ("owner", owner)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{what} must be a non-empty string; got {value!r}.")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}; got {pool!r}.")
        with self._lock:
            job = Job(
                fn, id=next(self._ids), name=name, kind=kind, owner=owner, pool=pool, meta=meta
            )
            self._jobs[job.id] = job
            self.version += 1
        job._future = self._pools[pool].submit(job._run, self._finished)
        return job

    def cancel(self, job_id: int, *, by: str, teacher: bool = False) -> Job:
        """Ask job ``job_id`` to stop. Only its owner (``by == job.owner``) or a teacher may.

        A queued job is cancelled at once (it never starts); a running one at its next cancel
        check. Cancelling a finished job does nothing. Raises PermissionError for anyone else.
        """
        job = self.get(job_id)
        if not teacher and by != job.owner:
            raise PermissionError(
                f"job {job.id} ({job.name!r}) belongs to {job.owner!r}; only "
                "its owner or a teacher may cancel it."
            )
        self._request_cancel(job)
        return job

    def _request_cancel(self, job: Job) -> None:
        job._cancel.set()
        # a queued job leaves at once; one a worker has just picked finishes in _run
        if job._future is not None and job._future.cancel():
            job._finish(CANCELLED, self._finished)

    def cancel_all(self) -> None:
        """Cancel every active job (process shutdown; no owner check)."""
        for job in self.active():
            self._request_cancel(job)

    def _finished(self, job: Job) -> None:
        with self._lock:
            self.version += 1
            listeners = list(self._listeners)
        for fn in listeners:
            fn(job)

    def on_finish(self, fn: Callable[[Job], None]) -> None:
        """Call ``fn(job)`` whenever a job finishes (in the thread that finished it)."""
        with self._lock:
            self._listeners.append(fn)

    def jobs(self, kind: str | None = None) -> list[Job]:
        """All jobs of the process (optionally of one kind), newest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in reversed(jobs) if kind is None or j.kind == kind]

    def active(self, kind: str | None = None) -> list[Job]:
        """Queued or running jobs, newest first."""
        return [j for j in self.jobs(kind) if j.active]

    def latest(self, kind: str | None = None) -> Job | None:
        """The newest job (of ``kind``), or None."""
        jobs = self.jobs(kind)
        return jobs[0] if jobs else None

    def get(self, job_id: int) -> Job:
        with self._lock:
            job = self._jobs.get(int(job_id))
            known = sorted(self._jobs)
        if job is None:
            raise ValueError(f"No job with id {job_id}; known ids: {known or 'none'}.")
        return job

    def shutdown(self, wait: bool = True) -> None:
        """Cancel every active job and stop the pools (waits for running jobs to leave)."""
        self.cancel_all()
        for pool in self._pools.values():
            pool.shutdown(wait=wait, cancel_futures=True)


_RUNNER: JobRunner | None = None
_RUNNER_LOCK = threading.Lock()


def runner() -> JobRunner:
    """The process-wide :class:`JobRunner` (created on first use)."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = JobRunner()
            # At interpreter exit concurrent.futures joins its workers before atexit handlers
            # run, so a running training would hold the exit until it finished. Hooks registered
            # here run before that join (threading runs them in reverse order): cancel first,
            # and the library leaves a resumable store within one chunk.
            register = getattr(threading, "_register_atexit", None)
            if register is not None:
                register(_RUNNER.cancel_all)
        return _RUNNER
