"""Independent NumPy/SciPy reference for the hawkmoth model.

Written straight from the equations of SCIENCE.md §1 with a generic 4×4 mass-matrix solve,
sharing no code with :mod:`mothlab.moth.dynamics`, so that tests comparing the two catch errors in
either. Used by the tests (tight-tolerance Radau solutions) and by ``mothlab bench simulate``
(the original generator's approach: ``scipy.integrate.odeint`` per trajectory).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import odeint, solve_ivp

from .params import MothParams


def rhs(t, y, u, p: MothParams):
    """dy/dt for one state y (8,) in the order [x, ẋ, y, ẏ, θ, θ̇, φ, φ̇] under controls u (3,)."""
    del t
    _, xd, _, yd, th, thd, ph, phd = y
    F, alpha, tau = u
    m1, m2, I1, I2 = p.m1, p.m2, p.I1, p.I2
    L1, L2, L3 = p.scaled("L1"), p.scaled("L2"), p.scaled("L3")
    M = np.array(
        [
            [m1 + m2, 0.0, -m1 * L1 * np.sin(th), -m2 * L2 * np.sin(ph)],
            [0.0, m1 + m2, m1 * L1 * np.cos(th), m2 * L2 * np.cos(ph)],
            [-m1 * L1 * np.sin(th), m1 * L1 * np.cos(th), I1 + m1 * L1**2, 0.0],
            [-m2 * L2 * np.sin(ph), m2 * L2 * np.cos(ph), 0.0, I2 + m2 * L2**2],
        ]
    )
    V = np.hypot(xd, yd)
    if V > 0:
        D_times_V = 0.0  # D·V, finite as V → 0 (the Stokes part of D is ∝ 1/V)
        for b, S in ((p.scaled("bhead"), p.S_head), (p.scaled("bbutt"), p.S_butt)):
            Re = p.rhoA * V * 2 * b / p.muA
            Cd = 24 / Re + 6 / (1 + np.sqrt(Re)) + 0.4
            D_times_V += 0.5 * p.rhoA * Cd * S * V
        drag_x = -D_times_V * abs(xd) * xd / V
        drag_y = -D_times_V * abs(yd) * yd / V
    else:
        drag_x = drag_y = 0.0
    delta = ph - th - np.pi - p.betaR
    f = np.array(
        [
            F * np.cos(th + alpha)
            + drag_x
            + m1 * L1 * thd**2 * np.cos(th)
            + m2 * L2 * phd**2 * np.cos(ph),
            F * np.sin(th + alpha)
            + drag_y
            - (m1 + m2) * p.g
            + m1 * L1 * thd**2 * np.sin(th)
            + m2 * L2 * phd**2 * np.sin(ph),
            tau
            - m1 * p.g * L1 * np.cos(th)
            + p.K * delta
            + p.c * (phd - thd)
            + F * L3 * np.sin(alpha),
            -tau - m2 * p.g * L2 * np.cos(ph) - p.K * delta - p.c * (phd - thd),
        ]
    )
    acc = np.linalg.solve(M, f)
    return np.array([xd, acc[0], yd, acc[1], thd, acc[2], phd, acc[3]])


def solve_reference(
    state0,
    controls,
    params: MothParams | None = None,
    t=(0.0, 0.02),
    rtol: float = 1e-12,
    atol: float = 1e-12,
) -> np.ndarray:
    """Tight-tolerance stiff solution (scipy Radau, 5th order implicit) at times t.

    state0 (8,), controls (3,) → (len(t), 8), float64.
    """
    p = params or MothParams()
    t = np.asarray(t, dtype=float)
    sol = solve_ivp(
        rhs,
        (t[0], t[-1]),
        np.asarray(state0, float),
        method="Radau",
        t_eval=t,
        args=(np.asarray(controls, float), p),
        rtol=rtol,
        atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"reference solver failed: {sol.message}")
    return sol.y.T


def solve_original(state0, controls, params: MothParams | None = None, t=(0.0, 0.02)) -> np.ndarray:
    """The original generator's approach: ``scipy.integrate.odeint`` at default tolerances."""
    p = params or MothParams()

    def f(y, tt):
        return rhs(tt, y, controls, p)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the original silently ignored "excess work done"
        return odeint(f, np.asarray(state0, float), np.asarray(t, float))
