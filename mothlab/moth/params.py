"""Body parameters of the two-body hawkmoth model (SCIENCE.md §1, tables S1 and S2).

Units are cgs throughout: g, cm, s; force in dyn, torque in dyn·cm.

`MothParams` holds the published global parameters (S1) as validated `param` values (each with its
unit, bounds and meaning, so the app gets sliders for free), the authors' length scale ``s``, and
the derived quantities (S2: masses, moments of inertia, frontal areas) as read-only properties.
The numeric core never sees this class: :meth:`MothParams.constants` flattens it into a
:class:`BodyConstants` tuple of floats, a JAX pytree, so that changing a value re-uses the compiled
simulator instead of recompiling it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import param


class BodyConstants(NamedTuple):
    """Every constant the equations of motion need, scale already applied (cgs units).

    A NamedTuple of floats (or of arrays, for batches of bodies): a JAX pytree.
    """

    m1: float  # head-thorax mass, g
    m2: float  # abdomen mass, g
    I1: float  # head-thorax moment of inertia about its centre, g·cm²
    I2: float  # abdomen moment of inertia about its centre, g·cm²
    L1: float  # joint → head-thorax centre, cm
    L2: float  # joint → abdomen centre, cm
    L3: float  # joint → point where the wing force acts, cm
    K: float  # joint spring, dyn·cm/rad
    c: float  # joint damper, dyn·cm·s/rad
    g: float  # gravity, cm/s²
    betaR: float  # rest angle offset of the joint, rad
    rhoA: float  # air density, g/cm³
    muA: float  # air viscosity, g/(cm·s)
    bhead: float  # head-thorax semi-minor axis (drag length scale), cm
    bbutt: float  # abdomen semi-minor axis, cm
    S_head: float  # head-thorax frontal area π bhead², cm²
    S_butt: float  # abdomen frontal area π bbutt², cm²


def _length(default, doc, *, label):
    return param.Number(
        default,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        softbounds=(0.05, 5.0),
        doc=doc,
        label=label,
    )


class MothParams(param.Parameterized):
    """Global parameters of the hawkmoth model (S1) and the length scale ``s``.

    Lengths listed in :attr:`SCALED` are multiplied by ``s`` before use; the derived quantities
    (:attr:`m1`, :attr:`I1`, ...) are computed from the scaled lengths.

    >>> p = MothParams()
    >>> round(p.m1, 3), round(p.m2, 3)
    (0.848, 1.791)
    >>> round(MothParams(s=1.3).m1 / p.m1, 3)  # mass grows as s³
    2.197
    """

    SCALED = ("bhead", "ahead", "bbutt", "abutt", "L1", "L2", "L3")

    bhead = _length(0.5, "Head-thorax semi-minor axis (cm).", label="b head (cm)")
    ahead = _length(0.9, "Head-thorax semi-major axis (cm).", label="a head (cm)")
    bbutt = _length(0.75, "Abdomen semi-minor axis (cm).", label="b abdomen (cm)")
    abutt = _length(1.9, "Abdomen semi-major axis (cm).", label="a abdomen (cm)")
    rho_head = param.Number(
        0.9,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        softbounds=(0.1, 3.0),
        label="ρ head (g/cm³)",
        doc="Head-thorax density (g/cm³).",
    )
    rho_butt = param.Number(
        0.4,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        softbounds=(0.1, 3.0),
        label="ρ abdomen (g/cm³)",
        doc="Abdomen density (g/cm³).",
    )
    rhoA = param.Number(
        0.00118,
        bounds=(0, None),
        softbounds=(0, 0.01),
        label="ρ air (g/cm³)",
        doc="Air density (g/cm³); 0 leaves only the Stokes drag.",
    )
    muA = param.Number(
        0.000186,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        softbounds=(1e-5, 1e-3),
        label="μ air (g/(cm·s))",
        doc="Dynamic viscosity of air (g/(cm·s)).",
    )
    L1 = _length(
        0.9, "Distance from the joint to the head-thorax centre of mass (cm).", label="L1 (cm)"
    )
    L2 = _length(
        1.9, "Distance from the joint to the abdomen centre of mass (cm).", label="L2 (cm)"
    )
    L3 = _length(
        0.75,
        "Distance from the joint to where the wing force acts, on the "
        "head-thorax axis (cm); must lie inside the head-thorax.",
        label="L3 (cm)",
    )
    K = param.Number(
        23000.0,
        bounds=(0, None),
        softbounds=(0, 1e5),
        label="K (dyn·cm/rad)",
        doc="Torsional spring stiffness of the joint (dyn·cm/rad).",
    )
    c = param.Number(
        14075.8,
        bounds=(0, None),
        softbounds=(0, 5e4),
        label="c (dyn·cm·s/rad)",
        doc="Torsional damping of the joint (dyn·cm·s/rad).",
    )
    g = param.Number(
        980.0,
        bounds=(0, None),
        softbounds=(0, 2000),
        label="g (cm/s²)",
        doc="Gravitational acceleration (cm/s²), along −y.",
    )
    betaR = param.Number(
        0.0,
        bounds=(-math.pi, math.pi),
        label="β_R (rad)",
        doc="Rest angle offset of the joint (rad): at rest φ = θ + π + β_R.",
    )
    s = param.Number(
        1.0,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        softbounds=(0.5, 2.0),
        label="scale s",
        doc="Length scale applied to bhead, ahead, bbutt, abutt, "
        "L1, L2 and L3 (the authors used s = 1.3 for extrapolation).",
    )

    def __init__(self, **params):
        super().__init__(**params)
        self.check()

    # -- validation ---------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Cross-parameter constraints that single-parameter bounds cannot express.

        Returns a list of human-readable problems (empty when the body is consistent).
        """
        out = []
        if not (self.L1 - self.ahead <= self.L3 <= self.L1 + self.ahead):
            out.append(
                f"L3 = {self.L3:g} cm puts the wing force outside the head-thorax, which spans "
                f"{self.L1 - self.ahead:g} to {self.L1 + self.ahead:g} cm from the joint "
                f"(L1 ± ahead); choose L3 in that range."
            )
        return out

    def check(self) -> MothParams:
        """Raise ValueError naming every inconsistency; return self when the body is valid."""
        problems = self.problems()
        if problems:
            raise ValueError("Invalid moth parameters: " + " ".join(problems))
        return self

    # -- derived quantities (S2), scale applied ----------------------------------------------
    def scaled(self, name: str) -> float:
        """A parameter's value with the length scale applied where it is a scaled length."""
        value = getattr(self, name)
        return value * self.s if name in self.SCALED else value

    @property
    def m1(self) -> float:
        """Head-thorax mass ρ_h·(4/3)π b_h² a_h (g)."""
        return self.rho_head * 4 / 3 * math.pi * self.scaled("bhead") ** 2 * self.scaled("ahead")

    @property
    def m2(self) -> float:
        """Abdomen mass ρ_a·(4/3)π b_a² a_a (g)."""
        return self.rho_butt * 4 / 3 * math.pi * self.scaled("bbutt") ** 2 * self.scaled("abutt")

    @property
    def I1(self) -> float:
        """Head-thorax moment of inertia m1(a_h² + b_h²)/5 about its centre (g·cm²)."""
        return self.m1 * (self.scaled("ahead") ** 2 + self.scaled("bhead") ** 2) / 5

    @property
    def I2(self) -> float:
        """Abdomen moment of inertia m2(a_a² + b_a²)/5 about its centre (g·cm²)."""
        return self.m2 * (self.scaled("abutt") ** 2 + self.scaled("bbutt") ** 2) / 5

    @property
    def S_head(self) -> float:
        """Head-thorax frontal area π b_h² (cm²)."""
        return math.pi * self.scaled("bhead") ** 2

    @property
    def S_butt(self) -> float:
        """Abdomen frontal area π b_a² (cm²)."""
        return math.pi * self.scaled("bbutt") ** 2

    @property
    def hover_force(self) -> float:
        """Wing force that balances the weight, (m1 + m2)·g (dyn)."""
        return (self.m1 + self.m2) * self.g

    def constants(self) -> BodyConstants:
        """The flat tuple of constants the numeric core uses (scale applied)."""
        self.check()
        # floats always (an int from a widget would change JAX's input types and recompile)
        return BodyConstants(
            *(
                float(v)
                for v in (
                    self.m1,
                    self.m2,
                    self.I1,
                    self.I2,
                    self.scaled("L1"),
                    self.scaled("L2"),
                    self.scaled("L3"),
                    self.K,
                    self.c,
                    self.g,
                    self.betaR,
                    self.rhoA,
                    self.muA,
                    self.scaled("bhead"),
                    self.scaled("bbutt"),
                    self.S_head,
                    self.S_butt,
                )
            )
        )

    def to_dict(self) -> dict[str, float]:
        """All S1 values and ``s`` as a plain dict (JSON-safe); inverse of ``MothParams(**d)``."""
        return {name: float(getattr(self, name)) for name in self.param if name != "name"}

    @classmethod
    def preset(cls, name: str) -> MothParams:
        """A named body: ``manduca`` (the published S1 set) or ``scaled`` (S1 with s = 1.3)."""
        try:
            return cls(**PRESETS[name])
        except KeyError:
            raise ValueError(
                f"Unknown moth preset {name!r}; choose one of {', '.join(sorted(PRESETS))}."
            ) from None


PRESETS: dict[str, dict[str, float]] = {
    "manduca": {},
    "scaled": {"s": 1.3},
}
