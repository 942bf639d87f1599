"""The one protocol for long work in mothlab: progress events and one ``Cancelled`` exception.

Every long-running library function (dataset generation, training and pruning, sparse training,
motif analysis, closed-loop studies, benchmarks) takes two optional keyword arguments:

``progress : callable(Progress) -> None``
    Called with a :class:`Progress` event whenever there is something to say — at least once a
    second while work is going on, and once at the start so that a bar moves from the first second.
``cancel : callable() -> bool``
    Polled between compiled chunks. When it returns True the function leaves whatever it writes
    in a resumable state and raises :class:`Cancelled` (never returns a partial result).

Consumers: :mod:`mothlab.jobs` (the app's background jobs keep the latest event as a snapshot),
:func:`tqdm_progress` (the CLI's progress bars), and tests (a list's ``append``). Nothing here
imports JAX or Panel.

>>> events = []
>>> report(events.append, 0.5, "half way", level=3)
>>> events[0].fraction, events[0].message, events[0].payload["level"]
(0.5, 'half way', 3)
>>> sub = span(events.append, 0.5, 1.0)      # a sub-task that fills the second half
>>> sub(Progress(0.5, "sub-task half way"))
>>> events[-1].fraction
0.75
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "Progress",
    "Cancelled",
    "ProgressFn",
    "CancelFn",
    "report",
    "check_cancel",
    "span",
    "tqdm_progress",
]


@dataclasses.dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes
    ----------
    fraction : float or None
        How much of the whole task is done, in [0, 1]; None when not known (e.g. a stage whose
        length is not known yet). Clipped to [0, 1] on construction; NaN becomes None.
    message : str
        One line for people ("level 3/18 (sparsity 35%): 12/40 networks stopped").
    payload : dict
        Optional machine-readable fields a view may plot, e.g. ``level``, ``n_levels``, ``step``,
        ``losses`` ((n_networks,) array), ``eta_s``. Keys are documented by the function that
        emits them. Arrays are copied by consumers that keep them (see :mod:`mothlab.jobs`).
    """

    fraction: float | None
    message: str = ""
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        f = self.fraction
        if f is not None:
            f = float(f)
            f = None if math.isnan(f) else min(1.0, max(0.0, f))
            object.__setattr__(self, "fraction", f)


class Cancelled(Exception):
    """Raised by a long-running function when its ``cancel`` callable returned True.

    What was written stays resumable; the message says how to resume where that applies."""


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


def report(
    progress: ProgressFn | None, fraction: float | None, message: str = "", **payload: Any
) -> None:
    """Send one :class:`Progress` event to ``progress`` (nothing when ``progress`` is None)."""
    if progress is not None:
        progress(Progress(fraction, message, payload))


def check_cancel(cancel: CancelFn | None, what: str = "") -> None:
    """Raise :class:`Cancelled` when ``cancel`` is given and returns True.

    ``what`` completes the message, e.g. ``"resume with: mothlab train … --resume"``."""
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled{'; ' + what if what else ''}")


def span(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    """A progress callable for a sub-task that fills ``[lo, hi]`` of its parent's fraction.

    Events from the sub-task keep their message and payload; their fraction f becomes
    ``lo + f (hi − lo)`` (None stays None). Returns None when ``progress`` is None."""
    if progress is None:
        return None
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"span needs 0 <= lo <= hi <= 1, got lo={lo}, hi={hi}.")

    def sub(ev: Progress) -> None:
        f = None if ev.fraction is None else lo + ev.fraction * (hi - lo)
        progress(Progress(f, ev.message, ev.payload))

    return sub


@contextlib.contextmanager
def tqdm_progress(desc: str = "", *, disable: bool = False, file=None) -> Iterator[ProgressFn]:
    """The CLI's adapter: a context manager yielding a ``progress`` callable that drives a tqdm
    bar in percent, with the event's message as the bar's postfix.

    >>> with tqdm_progress("demo", disable=True) as progress:
    ...     report(progress, 0.25, "a quarter")
    """
    from tqdm.auto import tqdm

    bar = tqdm(
        total=100,
        desc=desc,
        unit="%",
        disable=disable,
        file=file or sys.stderr,
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}",
        dynamic_ncols=True,
    )

    def progress(ev: Progress) -> None:
        if ev.fraction is not None:
            bar.n = round(100 * ev.fraction, 1)
        if ev.message:
            bar.set_postfix_str(ev.message[:80], refresh=False)
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()
