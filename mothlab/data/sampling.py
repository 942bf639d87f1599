"""The S3 sampling distribution: uniform initial states and constant controls.

One sample is a 20 ms flight from ``x0 = y0 = 0`` and a random state under constant random
controls, every quantity uniform over its range (SCIENCE.md §2):

====== ================ ==========
name   published range  unit
====== ================ ==========
ẋ0, ẏ0 [−1500, 1500]    cm/s
θ0, φ0 [0, 2π]          rad
θ̇0, φ̇0 [−25, 25]        rad/s
F      [0, 44300]       dyn
α      [0, 2π]          rad
τ      [−1e5, 1e5]      dyn·cm
====== ================ ==========

>>> r = SamplingRanges()
>>> state0, controls = r.sample(4, seed=0)
>>> state0.shape, controls.shape, float(abs(state0[:, [0, 2]]).max())
((4, 8), (4, 3), 0.0)
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import param

TWO_PI = 2 * math.pi


class OrderedRange(param.Range):
    """A ``param.Range`` that also refuses ``min > max`` and non-finite ends, clearly."""

    __slots__ = ["unit"]

    def __init__(self, default=None, *, unit: str = "", **params):
        self.unit = unit
        super().__init__(default, **params)

    def _validate(self, val):
        if val is not None:
            try:
                lo, hi = val
            except (TypeError, ValueError):
                raise ValueError(
                    f"Range {self.name!r} must be a (min, max) pair; got {val!r}."
                ) from None
            for end in (lo, hi):
                if not isinstance(end, numbers.Real) or not math.isfinite(end):
                    raise ValueError(
                        f"Range {self.name!r} must have finite numeric ends; got {val!r}."
                    )
            if lo > hi:
                raise ValueError(
                    f"Range {self.name!r} has min {lo:g} > max {hi:g} {self.unit}; give "
                    f"(min, max) with min <= max, e.g. ({hi:g}, {lo:g})."
                )
            b_lo, b_hi = self.bounds or (None, None)
            if (b_lo is not None and lo < b_lo) or (b_hi is not None and hi > b_hi):
                raise ValueError(
                    f"Range {self.name!r} = ({lo:g}, {hi:g}) {self.unit} is outside the allowed "
                    f"bounds [{b_lo:g}, {b_hi:g}] {self.unit}; choose ends inside them."
                )
        super()._validate(val)


def _range(default, bounds, unit, doc, label):
    return OrderedRange(
        tuple(float(v) for v in default),
        bounds=bounds,
        unit=unit,
        doc=f"{doc} ({unit}); sampled uniformly.",
        label=f"{label} ({unit})",
    )


class SamplingRanges(param.Parameterized):
    """The S3 ranges of initial states and controls, each sampled uniformly (defaults: the paper's).

    Each parameter is a ``(min, max)`` pair; ``min == max`` fixes the quantity. Bounds keep the
    ranges physical (``F >= 0``) and within what the integrator was validated for.
    """

    #: sampled quantities in the order of :meth:`sample`'s uniform draws (do not reorder: it
    #: would change every dataset generated from a seed)
    NAMES = ("xd", "yd", "theta", "phi", "thetad", "phid", "F", "alpha", "tau")

    xd = _range((-1500, 1500), (-1e4, 1e4), "cm/s", "Initial horizontal velocity ẋ₀", "ẋ₀")
    yd = _range((-1500, 1500), (-1e4, 1e4), "cm/s", "Initial vertical velocity ẏ₀", "ẏ₀")
    theta = _range(
        (0, TWO_PI), (-4 * math.pi, 4 * math.pi), "rad", "Initial head-thorax angle θ₀", "θ₀"
    )
    phi = _range((0, TWO_PI), (-4 * math.pi, 4 * math.pi), "rad", "Initial abdomen angle φ₀", "φ₀")
    thetad = _range(
        (-25, 25), (-1000, 1000), "rad/s", "Initial head-thorax angular velocity θ̇₀", "θ̇₀"
    )
    phid = _range((-25, 25), (-1000, 1000), "rad/s", "Initial abdomen angular velocity φ̇₀", "φ̇₀")
    F = _range((0, 44300), (0, 1e6), "dyn", "Wing force F", "F")
    alpha = _range(
        (0, TWO_PI),
        (-4 * math.pi, 4 * math.pi),
        "rad",
        "Wing force angle α relative to the body axis",
        "α",
    )
    tau = _range((-1e5, 1e5), (-1e7, 1e7), "dyn·cm", "Abdominal torque τ", "τ")

    def to_dict(self) -> dict[str, list[float]]:
        """The ranges as ``{name: [min, max]}`` (JSON-safe); inverse of :meth:`from_dict`."""
        return {name: [float(v) for v in getattr(self, name)] for name in self.NAMES}

    @classmethod
    def from_dict(cls, d: dict) -> SamplingRanges:
        """Ranges from ``{name: [min, max]}``; unknown names are refused, missing ones default."""
        if not isinstance(d, dict):
            raise ValueError(f"Sampling ranges must be a dict {{name: [min, max]}}; got {d!r}.")
        unknown = set(d) - set(cls.NAMES)
        if unknown:
            raise ValueError(
                f"Unknown sampling range(s) {sorted(unknown)}; allowed names: "
                f"{', '.join(cls.NAMES)}."
            )
        return cls(**{k: tuple(v) for k, v in d.items()})

    def sample(self, n: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` samples.

        Parameters
        ----------
        n : int > 0
        seed : int >= 0, or a sequence of such ints (e.g. ``[seed, chunk_index]``, which is how
            datasets make each chunk depend only on its own index)

        Returns
        -------
        state0 : float64 (n, 8)
            ``[x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]`` with ``x = y = 0``.
        controls : float64 (n, 3)
            ``[F, α, τ]``.
        """
        n = check_count(n, "n")
        rng = np.random.default_rng(check_seed(seed))
        lo = np.array([getattr(self, k)[0] for k in self.NAMES])
        hi = np.array([getattr(self, k)[1] for k in self.NAMES])
        u = rng.random((n, len(self.NAMES)))
        v = lo + (hi - lo) * u  # (n, 9) in NAMES order
        col = dict(zip(self.NAMES, v.T))
        state0 = np.zeros((n, 8))
        state0[:, 1] = col["xd"]
        state0[:, 3] = col["yd"]
        state0[:, 4] = col["theta"]
        state0[:, 5] = col["thetad"]
        state0[:, 6] = col["phi"]
        state0[:, 7] = col["phid"]
        controls = np.stack([col["F"], col["alpha"], col["tau"]], axis=1)
        return state0, controls


def check_count(n, name: str = "n") -> int:
    """``n`` as a positive int, or a ValueError that says so."""
    if (
        isinstance(n, bool)
        or not isinstance(n, numbers.Integral | float)
        or (isinstance(n, float) and not n.is_integer())
    ):
        raise ValueError(f"{name} must be a positive whole number; got {n!r}.")
    if n <= 0:
        raise ValueError(f"{name} must be at least 1; got {n}.")
    return int(n)


def check_seed(seed):
    """A seed for ``numpy.random.default_rng``: an int >= 0 or a non-empty sequence of them."""
    items = [seed] if isinstance(seed, numbers.Integral) else seed
    try:
        items = list(items)
    except TypeError:
        raise ValueError(
            f"seed must be an integer >= 0 (or a list of them); got {seed!r}."
        ) from None
    if not items or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in items
    ):
        raise ValueError(f"seed must be an integer >= 0 (or a list of them); got {seed!r}.")
    ints = [int(s) for s in items]
    return ints[0] if isinstance(seed, numbers.Integral) else ints
