"""What the moth is asked to follow: hover at a point, the oscillating flower, user waypoints.

A target is a function of time giving the goal position of the joint ``(x, y)`` (cm), its velocity
(cm/s) and its acceleration (cm/s²); the closed loop uses all three (feed-forward plus feedback,
see :mod:`mothlab.control.loop`). Every target here is sampled on the control grid by
:meth:`Target.sample` and handed to the compiled loop as plain arrays.

>>> import numpy as np

>>> p, v, a = Hover((1.0, 2.0)).sample(np.array([0.0, 0.02]))
>>> p.tolist(), float(abs(v).max()), float(abs(a).max())
([[1.0, 2.0], [1.0, 2.0]], 0.0, 0.0)
>>> f = Flower(amplitude=1.0)
>>> len(f.frequencies), f.frequencies[0], f.frequencies[-1]
(20, 0.2, 19.9)
"""

from __future__ import annotations

import math

import numpy as np

from .names import TARGETS

#: Frequencies (Hz) of the flower's sum of sines: 0.2–19.9 Hz, prime multiples of 0.1 Hz (and
#: 16.9 = 13² · 0.1) so that no component is a harmonic of another — the robotic-flower signal of
#: Sponberg et al. (2015), which Bustamante et al. (2022) tracked with their MPC.
FLOWER_FREQUENCIES = (
    0.2,
    0.3,
    0.5,
    0.7,
    1.1,
    1.3,
    1.7,
    1.9,
    2.3,
    2.9,
    3.7,
    4.3,
    5.3,
    6.1,
    7.9,
    8.9,
    11.3,
    13.7,
    16.9,
    19.9,
)

#: Waypoints farther than this from the start are refused (cm): beyond it the flight leaves the
#: region a 20 ms controller trained on S3 data can be expected to know.
MAX_WAYPOINT_DISTANCE_CM = 200.0


class Target:
    """Base class: ``sample(t) -> (p, v, a)`` with shapes (T, 2) each (cm, cm/s, cm/s²)."""

    name = "target"

    def sample(self, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class Hover(Target):
    """Hold the point ``at`` (cm)."""

    name = "hover"

    def __init__(self, at=(0.0, 0.0)):
        self.at = np.asarray(check_point(at, "hover point"), float)

    def sample(self, t):
        t = np.asarray(t, float)
        p = np.broadcast_to(self.at, (len(t), 2)).copy()
        return p, np.zeros_like(p), np.zeros_like(p)

    def describe(self):
        return f"hover at ({self.at[0]:g}, {self.at[1]:g}) cm"


class Flower(Target):
    """A flower moving vertically as ``y(t) = y0 + Σ A_i sin(2π f_i t + ψ_i)``.

    Equal velocity amplitude: ``A_i = amplitude · f_0 / f_i``, so the slowest component (0.2 Hz)
    has position amplitude ``amplitude`` (cm) and every component the speed amplitude
    ``2π f_0 · amplitude``. Phases ``ψ_i`` are uniform random from ``seed`` (explicit, so a flower
    is reproducible), shifted so that the flower starts at ``at``.
    """

    name = "flower"

    def __init__(
        self,
        amplitude: float = 2.0,
        *,
        seed: int = 0,
        at=(0.0, 0.0),
        frequencies=FLOWER_FREQUENCIES,
    ):
        amplitude = float(amplitude)
        if not math.isfinite(amplitude) or amplitude < 0 or amplitude > 50:
            raise ValueError(f"flower amplitude must be in [0, 50] cm; got {amplitude!r}.")
        self.amplitude = amplitude
        self.at = np.asarray(check_point(at, "flower start"), float)
        self.frequencies = tuple(float(f) for f in frequencies)
        f = np.asarray(self.frequencies)
        self.amplitudes = amplitude * f[0] / f
        self.phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, len(f))

    def sample(self, t):
        t = np.asarray(t, float)[:, None]
        w = 2 * np.pi * np.asarray(self.frequencies)[None]
        arg = w * t + self.phases
        y0 = (self.amplitudes * np.sin(self.phases)).sum()
        y = (self.amplitudes * np.sin(arg)).sum(1) - y0
        vy = (self.amplitudes * w * np.cos(arg)).sum(1)
        ay = -(self.amplitudes * w * w * np.sin(arg)).sum(1)
        z = np.zeros(len(t))
        p = np.stack([z + self.at[0], y + self.at[1]], 1)
        return p, np.stack([z, vy], 1), np.stack([z, ay], 1)

    def describe(self):
        return f"flower, {self.amplitude:g} cm at 0.2 Hz, 0.2–19.9 Hz"


class Waypoints(Target):
    """Move the goal from ``start`` through ``points`` in order at ``speed`` cm/s, then hold.

    The goal itself moves smoothly along the polyline (a constant speed on each leg); the moth
    chases it.
    """

    name = "waypoints"

    def __init__(
        self, points, *, speed: float = 25.0, start=(0.0, 0.0), duration: float | None = None
    ):
        pts = np.asarray(
            [check_point(p, f"waypoint {i + 1}") for i, p in enumerate(points)], float
        ).reshape(-1, 2)
        if len(pts) == 0:
            raise ValueError('waypoints: give at least one point, e.g. --waypoints "2,0;2,2".')
        speed = float(speed)
        if not math.isfinite(speed) or speed <= 0 or speed > 500:
            raise ValueError(f"waypoint speed must be in (0, 500] cm/s; got {speed!r}.")
        self.start = np.asarray(check_point(start, "start"), float)
        far = np.hypot(*(pts - self.start).T)
        if far.max() > MAX_WAYPOINT_DISTANCE_CM:
            i = int(np.argmax(far))
            raise ValueError(
                f"waypoint {i + 1} at ({pts[i, 0]:g}, {pts[i, 1]:g}) cm is out of reach: "
                f"{far[i]:.1f} cm from the start, more than {MAX_WAYPOINT_DISTANCE_CM:g} cm; "
                "choose waypoints closer to the start."
            )
        self.points, self.speed = pts, speed
        nodes = np.concatenate([self.start[None], pts])
        self._legs = np.hypot(*np.diff(nodes, axis=0).T)
        self._nodes = nodes
        self._t_nodes = np.concatenate([[0.0], np.cumsum(self._legs / speed)])
        if duration is not None and self._t_nodes[-1] > duration + 1e-9:
            i = int(np.argmax(self._t_nodes > duration + 1e-9)) - 1
            raise ValueError(
                f"waypoint {i + 1} at ({pts[i, 0]:g}, {pts[i, 1]:g}) cm is out of reach: at "
                f"{speed:g} cm/s the goal needs {self._t_nodes[i + 1]:.2f} s to get there but the "
                f"flight lasts {duration:g} s; lengthen the duration or move it closer."
            )

    def sample(self, t):
        t = np.asarray(t, float)
        p = np.stack([np.interp(t, self._t_nodes, self._nodes[:, j]) for j in range(2)], 1)
        leg = np.clip(np.searchsorted(self._t_nodes, t, side="right") - 1, 0, len(self._legs))
        v = np.zeros_like(p)
        moving = leg < len(self._legs)
        d = np.diff(self._nodes, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(self._legs[:, None] > 0, d / self._legs[:, None], 0.0)
        v[moving] = unit[leg[moving]] * self.speed
        return p, v, np.zeros_like(p)

    def describe(self):
        pts = "; ".join(f"{x:g},{y:g}" for x, y in self.points)
        return f"waypoints {pts} at {self.speed:g} cm/s"


def check_point(p, what: str) -> tuple[float, float]:
    """A finite (x, y) pair, or ValueError naming it."""
    try:
        x, y = (float(v) for v in p)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an (x, y) pair of numbers in cm; got {p!r}.") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{what} must be finite; got ({x}, {y}) — give numbers in cm.")
    return x, y


def parse_waypoints(text: str) -> list[tuple[float, float]]:
    """``"x,y;x,y"`` → list of pairs (cm); refuses NaN, inf and malformed text with the fix.

    >>> parse_waypoints("2,0; 2,2")
    [(2.0, 0.0), (2.0, 2.0)]
    """
    out = []
    for i, part in enumerate(p for p in str(text).split(";") if p.strip()):
        bits = part.split(",")
        if len(bits) != 2:
            raise ValueError(
                f"waypoint {i + 1} {part.strip()!r} is not 'x,y'; write waypoints "
                'as "x,y;x,y" in cm, e.g. "2,0;2,2".'
            )
        try:
            pt = (float(bits[0]), float(bits[1]))
        except ValueError:
            raise ValueError(
                f'waypoint {i + 1} {part.strip()!r} is not two numbers; write "x,y;x,y" in cm.'
            ) from None
        out.append(check_point(pt, f"waypoint {i + 1}"))
    if not out:
        raise ValueError('no waypoints given; write them as "x,y;x,y" in cm, e.g. "2,0;2,2".')
    return out


def make_target(
    name: str,
    *,
    waypoints=None,
    amplitude: float = 2.0,
    speed: float = 25.0,
    duration: float | None = None,
    seed: int = 0,
) -> Target:
    """A target by its name in :data:`TARGETS`."""
    if name == "hover":
        return Hover()
    if name == "flower":
        return Flower(amplitude, seed=seed)
    if name == "waypoints":
        if waypoints is None:
            raise ValueError("target 'waypoints' needs waypoints, e.g. --waypoints \"2,0;2,2\".")
        if isinstance(waypoints, str):
            waypoints = parse_waypoints(waypoints)
        return Waypoints(waypoints, speed=speed, duration=duration)
    raise ValueError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}.")
