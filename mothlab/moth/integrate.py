"""Fast, accurate integration of the hawkmoth model: ``simulate``.

Why an exponential integrator
-----------------------------
The joint damper makes the model stiff: one eigenvalue λ ≈ −6.5×10⁴ s⁻¹ (the relative angular
velocity φ̇ − θ̇ relaxing in ~15 µs) against O(10–100) s⁻¹ for everything else. Explicit RK4 needs
> 450 steps per 20 ms just to stay stable; an implicit solver needs a Newton solve per step.

The damper is *linear in the velocities and rank one*: its acceleration is ``A q̇`` with
``A = u bᵀ``, ``u = −c M⁻¹b``, ``b = (0, 0, −1, 1)`` (see :func:`~mothlab.moth.dynamics.damper_mode`).
Writing the first-order system as ``y' = ℒ y + N(y)`` with ``y = (q, q̇)`` and
``ℒ = [[0, I], [0, A]]`` frozen at the start of each step, every matrix function of ``hℒ`` has a
closed form because ``A² = λA``:

    φ_j(hℒ) (dq, dv) = ( dq/j! + h dv/(j+1)! + h² φ_{j+2}(hλ) u s,
                          dv/j! + h φ_{j+1}(hλ) u s ),     s = bᵀdv,

with the scalar functions φ_k(z) = Σ_m z^m/(m+k)!. We use the five-stage exponential Runge–Kutta
scheme of Hochbruck & Ostermann (2005, stiff order 4) on this splitting: the stiff mode is
propagated exactly (stable for any step, and it also integrates the damper's transient into the
angles correctly), while the remaining dynamics (gravity, drag, wing force, spring, Coriolis terms,
and the slow drift of ``A`` with the body's shape) are handled explicitly. (Cox & Matthews'
four-stage ETDRK4 in the same rank-one form shows the order reduction that Hochbruck–Ostermann's
stiff order avoids: over 4,000 S3 flights at the default steps its worst error was 1.2e-4 in
float32 and 8.5e-6 in float64, against 1.8e-6 and 2.4e-8 here; 2026-12-02 03:42 UTC.) A
step costs five right-hand sides (each with one sine and cosine per body angle: θ + α and φ − θ
come from addition theorems, both bodies' √Re from one square root) and one 2×2 solve for
``(u, λ)``; there is no Newton iteration and no adaptive control flow, so the step vectorises
perfectly over trajectories on CPU and GPU.

Two kernels run the step. On the CPU, :mod:`mothlab.moth.lanes`: numba code generated from the
jaxpr of this module's step (one flight per vector lane, no XLA dispatch; see
:data:`CPU_KERNEL`); elsewhere the JAX kernel :func:`_chunk_kernel`. They agree to 2e-16 in
float64 and to float32 round-off (only sin, cos and exp are computed differently), and within
each kernel a flight's result is bit-identical alone, in a batch and in any chunking.

The first steps of a flight grow geometrically from 0.1/|λ| by 1.3 in float64 (0.3/|λ| by 3 in
float32, whose round-off floor hides the difference):
an arbitrary initial φ̇₀ − θ̇₀ relaxes onto the damper's slow manifold within ~15 µs, and
resolving that boundary layer in absolute time (not as fixed fractions of the first step) is what
makes the scheme converge at its order from few steps: float64 needs 96 steps per 20 ms (plus ~20
graded ones) where fixed fractions needed 640 for a larger worst error.

Measured accuracy, the final state's error divided by each variable's range over the sample, over
2 000 S3 samples (seed 1) against the same scheme in float64 at 5 120 steps (itself within ~1e-11
of scipy's Radau at rtol 1e-12 on the hardest samples); 2026-12-02 06:22 UTC, through
``simulate`` with the CPU's lane kernel (the JAX kernel in the same run: float32 1.43e-6 /
1.00e-7, float64 the same as here; 03:35 UTC, JAX kernel: 1.4e-6 / 1.0e-7; 2026-12-01, 10 graded
steps: 1.4e-6 / 5.9e-8):

==================  =========  ==========  ========  =======
mode                steps/20ms  worst       median    target
==================  =========  ==========  ========  =======
float32 (default)   24          1.5e-6      9.8e-8    1e-4
float64 (precise)   96          1.9e-8      5.4e-10   1e-7
==================  =========  ==========  ========  =======

Same study, float64, other step counts (worst / median): 48 steps 1.7e-7 / 2.0e-9, 64 steps
7.1e-8 / 1.1e-9, 128 steps 7.4e-9 / 3.4e-10 — fourth order from ~48 steps on.
``tests/test_moth.py`` checks samples against Radau directly, and ``mothlab bench simulate``
repeats the comparison beside the original ``odeint`` generator and diffrax.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .names import (  # noqa: F401 - re-exported: the names' one list lives in names.py
    CONTROL_LABELS,
    CONTROL_NAMES,
    CONTROL_UNITS,
    STATE_LABELS,
    STATE_NAMES,
    STATE_UNITS,
)
from .params import BodyConstants, MothParams

#: Steps per 20 ms for float32 and float64 (``precise=True``); the step length is scaled
#: for other time spans. Chosen from the measured worst errors in the module docstring
#: (67× and 5× below the targets 1e-4 and 1e-7).
DEFAULT_STEPS = {"float32": 24, "float64": 96}
#: (worst, median) range-scaled error of the final state at DEFAULT_STEPS over 2 000 S3 samples
#: (module docstring): the figures a dataset header quotes.
MEASURED_ACCURACY = {"float32": (1.5e-6, 9.8e-8), "float64": (1.9e-8, 5.4e-10)}
REFERENCE_SPAN = 0.02  # s


# --- scalar φ-functions ----------------------------------------------------------------------


def phi_functions(z, kmax: int):
    """φ_0(z) … φ_kmax(z) for arrays z ≤ 0 (elementwise), stable for every z.

    Large |z|: upward recurrence φ_0 = eᶻ, φ_{k+1} = (φ_k − 1/k!)/z (it divides by |z| ≥ 2, so
    errors shrink). Small |z|: the upward recurrence would cancel, so φ_kmax comes from its Taylor
    series (24 terms: truncation < 1e-17 for |z| < 2) and the rest from the downward recurrence
    φ_k = 1/k! + z φ_{k+1}, which is stable there (it multiplies errors by |z| < 2 over k! growth).
    """
    small = jnp.abs(z) < 2.0
    zs = jnp.where(small, z, 0.0)
    zl = jnp.where(small, -2.0, z)
    up = [jnp.exp(zl)]
    for k in range(kmax):
        up.append((up[-1] - 1.0 / math.factorial(k)) / zl)
    down = [jnp.zeros_like(z)]
    for m in range(23, -1, -1):
        down[0] = down[0] * zs + 1.0 / math.factorial(m + kmax)
    for k in range(kmax - 1, -1, -1):
        down.insert(0, 1.0 / math.factorial(k) + zs * down[0])
    return [jnp.where(small, d, u) for d, u in zip(down, up)]


# --- one exponential Runge–Kutta step on component tuples -----------------------------------------------------


def _phi_apply(j: int, h, phis, u, dq, dv):
    """φ_j(hℒ) applied to (dq, dv); ``phis`` holds φ_k(hλ) for k = 0…5. dq may be None (zero)."""
    s = dv[3] - dv[2]
    f = math.factorial
    cq = h * h * phis[j + 2] * s
    cv = h * phis[j + 1] * s
    q = tuple(
        (0.0 if dq is None else dq[i] / f(j)) + h * dv[i] / f(j + 1) + cq * u[i] for i in range(4)
    )
    v = tuple(dv[i] / f(j) + cv * u[i] for i in range(4))
    return q, v


# Butcher tableaux of exponential RK methods: each coefficient is a list of (weight, j, c) terms
# meaning weight·φ_j(c·hℒ). Stage i is  U_i = e^{c_i hℒ} y_n + h Σ_j a_ij N(U_j).
_HALF = 0.5
HOCHBRUCK_OSTERMANN = {
    # Hochbruck & Ostermann (2005), SIAM J. Numer. Anal. 43:1069, eq. (5.19): stiff order 4.
    "c": (0.0, 0.5, 0.5, 1.0, 0.5),
    "a": (
        (),
        (((0.5, 1, _HALF),),),
        (((0.5, 1, _HALF), (-1.0, 2, _HALF)), ((1.0, 2, _HALF),)),
        (((1.0, 1, 1.0), (-2.0, 2, 1.0)), ((1.0, 2, 1.0),), ((1.0, 2, 1.0),)),
        # a52 = a53 = ½φ2,5 − φ3,4 + ¼φ2,4 − ½φ3,5 ; a54 = ¼φ2,5 − a52 ; a51 = ½φ1,5 − 2a52 − a54
        (
            ((0.5, 1, _HALF), (-0.75, 2, _HALF), (1.0, 3, 1.0), (-0.25, 2, 1.0), (0.5, 3, _HALF)),
            ((0.5, 2, _HALF), (-1.0, 3, 1.0), (0.25, 2, 1.0), (-0.5, 3, _HALF)),
            ((0.5, 2, _HALF), (-1.0, 3, 1.0), (0.25, 2, 1.0), (-0.5, 3, _HALF)),
            ((0.25, 2, _HALF), (-0.5, 2, _HALF), (1.0, 3, 1.0), (-0.25, 2, 1.0), (0.5, 3, _HALF)),
        ),
    ),
    "b": (
        ((1.0, 1, 1.0), (-3.0, 2, 1.0), (4.0, 3, 1.0)),
        (),
        (),
        ((-1.0, 2, 1.0), (4.0, 3, 1.0)),
        ((4.0, 2, 1.0), (-8.0, 3, 1.0)),
    ),
}


class _Derived(NamedTuple):
    """Constants of the right-hand side derived once per call (not per stage)."""

    m: object
    p1: object
    p2: object
    s11: object
    s22: object
    stokes: object  # Σ 6 μ S_i / b_i: Stokes drag coefficient times V
    rest_h: object  # ½ ρ S_h, ½ ρ S_a: the Re-dependent drag parts
    rest_a: object
    kre_h: object  # √(ρ 2 b_i / μ): √Re_i = kre_i √V
    kre_a: object
    weight: object  # (m1 + m2) g
    g: object
    K: object
    c: object
    L3: object
    offset: object  # π + β_R


def _derived(k: BodyConstants) -> _Derived:
    m = k.m1 + k.m2
    p1, p2 = k.m1 * k.L1, k.m2 * k.L2
    return _Derived(
        m=m,
        p1=p1,
        p2=p2,
        s11=k.I1 + k.m1 * k.L1**2 - p1 * p1 / m,
        s22=k.I2 + k.m2 * k.L2**2 - p2 * p2 / m,
        stokes=6 * k.muA * (k.S_head / k.bhead + k.S_butt / k.bbutt),
        rest_h=0.5 * k.rhoA * k.S_head,
        rest_a=0.5 * k.rhoA * k.S_butt,
        kre_h=jnp.sqrt(k.rhoA * 2 * k.bhead / k.muA),
        kre_a=jnp.sqrt(k.rhoA * 2 * k.bbutt / k.muA),
        weight=m * k.g,
        g=k.g,
        K=k.K,
        c=k.c,
        L3=k.L3,
        offset=jnp.pi + k.betaR,
    )


def _control_terms(controls, d: _Derived):
    """Per-flight constants of the wing force: (F cos α, F sin α, τ + F L3 sin α, τ)."""
    F, alpha, tau = controls
    fc, fs = F * jnp.cos(alpha), F * jnp.sin(alpha)
    return fc, fs, tau + d.L3 * fs, tau


def _trig(q):
    return jnp.sin(q[2]), jnp.cos(q[2]), jnp.sin(q[3]), jnp.cos(q[3])


def _solve(trig, fx, fy, fth, fph, d: _Derived):
    """M q̈ = f in closed form (Schur complement on the angular block, as in dynamics.solve_mass),
    sharing the body's sines and cosines."""
    sth, cth, sph, cph = trig
    r1 = fth - d.p1 * (cth * fy - sth * fx) / d.m
    r2 = fph - d.p2 * (cph * fy - sph * fx) / d.m
    s12 = -d.p1 * d.p2 * (cph * cth + sph * sth) / d.m  # cos(φ − θ) from the shared values
    inv = 1.0 / (d.s11 * d.s22 - s12 * s12)
    ath = (d.s22 * r1 - s12 * r2) * inv
    aph = (d.s11 * r2 - s12 * r1) * inv
    ax = (fx + d.p1 * sth * ath + d.p2 * sph * aph) / d.m
    ay = (fy - d.p1 * cth * ath - d.p2 * cph * aph) / d.m
    return ax, ay, ath, aph


def _accelerations(trig, q, v, ctl, d: _Derived):
    """q̈ of the full model (damper included): the same equations as dynamics.accelerations, with
    every sine and cosine computed once (θ + α and φ − θ by the addition theorems) and one square
    root for both bodies' √Re."""
    sth, cth, sph, cph = trig
    xd, yd, thd, phd = v
    fc, fs, tau_th, tau = ctl
    v2 = xd * xd + yd * yd
    moving = v2 > 0
    speed = jnp.sqrt(jnp.where(moving, v2, 1.0))
    root = jnp.sqrt(speed)
    rest = d.rest_h * (6.0 / (1.0 + d.kre_h * root) + 0.4) + d.rest_a * (
        6.0 / (1.0 + d.kre_a * root) + 0.4
    )
    stokes = jnp.where(moving, d.stokes / speed, 0.0)
    drag = stokes + rest
    w1, w2 = d.p1 * thd * thd, d.p2 * phd * phd
    fx = fc * cth - fs * sth - drag * xd * jnp.abs(xd) + w1 * cth + w2 * cph
    fy = fc * sth + fs * cth - drag * yd * jnp.abs(yd) - d.weight + w1 * sth + w2 * sph
    joint = d.K * (q[3] - q[2] - d.offset) + d.c * (phd - thd)
    fth = tau_th - d.p1 * d.g * cth + joint
    fph = -tau - d.p2 * d.g * cph - joint
    return _solve(trig, fx, fy, fth, fph, d)


def _damper(trig, d: _Derived):
    """(u, λ) of :func:`~mothlab.moth.dynamics.damper_mode` from the shared sines and cosines."""
    zero = jnp.zeros_like(trig[0])
    u = _solve(trig, zero, zero, zero + d.c, zero - d.c, d)
    return u, u[3] - u[2]


def _phis(z):
    """φ_0 … φ_5 of z: the cheap upward recurrence alone when every |z| ≥ 2 (the common case of a
    regular step), the full stable evaluation otherwise (graded first steps)."""

    def upward(z):  # the same operations as phi_functions' large-|z| branch: identical bits
        out = [jnp.exp(z)]
        for kk in range(5):
            out.append((out[-1] - 1.0 / math.factorial(kk)) / z)
        return out

    return jax.lax.cond(jnp.all(jnp.abs(z) >= 2.0), upward, lambda z: phi_functions(z, 5), z)


class _StackedEntry(NamedTuple):
    """One stage input (or the final increment) of :func:`_step`, host-side: ``y + (Δq, Δv)`` with
    ``Δq = h (c v + h Σ_k aq_k N_k) + σq u``, ``Δv = h Σ_k av_k N_k + σv u`` over the earlier
    stages' nonlinear terms N_k (their q-part is zero), and the per-flight scalars
    ``σ = κ_E(c) s_y + Σ_g κ_g (Σ_{k∈g} w s_k)`` over the (j, c) groups of φ_j(c hℒ) terms, where
    s = v₃ − v₂ of y and of each N_k and the κ are φ-functions of c h λ times powers of h."""

    c: float
    aq: tuple  # (k, weight) pairs
    av: tuple
    groups: tuple  # ((j, c), ((k, w), ...)) pairs


@lru_cache(maxsize=4)
def _stacked_tableau(tableau_key) -> tuple:
    c_all, a_all, b = tableau_key
    f = math.factorial
    out = []
    stages = [(c, a) for c, a in zip(c_all, a_all) if c != 0.0]
    for c_i, terms_by_k in [*stages, (1.0, b)]:
        aq, av, groups = [], [], {}
        for k, terms in enumerate(terms_by_k):
            if not terms:
                continue
            aq.append((k, sum(w * c / f(j + 1) for w, j, c in terms)))
            av.append((k, sum(w / f(j) for w, j, c in terms)))
            for w, j, c in terms:
                groups.setdefault((j, c), []).append((k, w))
        out.append(
            _StackedEntry(
                c_i, tuple(aq), tuple(av), tuple((g, tuple(m)) for g, m in groups.items())
            )
        )
    return tuple(out)


def _tableau_key(tableau):
    return (tuple(tableau["c"]), tuple(tableau["a"]), tuple(tableau["b"]))


def _rows(x):
    return x[0], x[1], x[2], x[3]


def _lincomb(pairs, arrays):
    """Σ w·arrays[k] over (k, w) pairs, elementwise in a fixed order: the same bits for any batch
    size (an XLA dot would not promise that)."""
    out = None
    for k, w in pairs:
        term = arrays[k] if w == 1.0 else w * arrays[k]
        out = term if out is None else out + term
    return out


def _step(q, v, ctl, d: _Derived, h, tableau=HOCHBRUCK_OSTERMANN, branchless=False):
    """Increment (dq, dv) of the stacked state ``q, v`` (4, ...) over one step h (a scalar) of the
    exponential Runge–Kutta scheme.

    Written for few, whole-array operations (the CPU kernel runs unfused, one loop per operation:
    see :data:`UNFUSED_OPTIONS`): each stage input is one linear combination of the stacked
    (4, ...) terms N_k plus one per-flight multiple of u (see :class:`_StackedEntry`), where
    :func:`_step_tuples` spelled out every component of every φ_j(c hℒ) application. The two
    agree to 2.3e-16 (range-scaled, float64, 64 S3 flights). Unfused step body: ~1,000 operations
    (684 on (N,) arrays, 133 on (4, N)) against ~1,330 before; A/B in one process, 1 thread,
    float32, 2026-12-02 03:26 UTC, load 5.0-5.6: chunk 256 42,295 against 31,348 flights/s (best
    of 3; medians 34,875 / 26,593), chunk 4,096 53,268 against 55,913 (medians 42,285 / 47,121:
    the same within the noise), one 41-frame flight 4.6 against 4.9 ms.

    ``branchless``: evaluate the φ-functions without :func:`_phis`' branch (the same bits: the
    branch only skips work that the selection discards). With the fused kernel the branch's
    control flow cost more than it skipped for a few flights (one flight: 1.3 ms against 3.0 ms per
    41-frame call, 2026-12-02 under load 3-5); with the unfused CPU kernel the two are even (A/B,
    04:09 UTC, load 2.5, best of 10: 2.13 / 2.08 ms per 41-frame flight, 1.66 / 1.49 ms per
    16 flights, branchless / branch), and small batches stay branchless."""
    entries = _stacked_tableau(_tableau_key(tableau))
    trig0 = _trig(q)
    u_rows, lam = _damper(trig0, d)
    u = jnp.stack(u_rows)
    phis_of = (lambda z: phi_functions(z, 5)) if branchless else _phis
    phis = {c: phis_of(c * h * lam) for c in (0.5, 1.0)}
    kappa = {}

    def coefficient(key):
        """(κq, κv) of a (j, c) group — h (c h)² φ_{j+2} and h (c h) φ_{j+1} — or, for j = None,
        of e^{c hℒ} y: (c h)² φ_2 and c h φ_1; computed once per step."""
        if key not in kappa:
            j, c = key
            ch = c * h
            if j is None:
                kappa[key] = ((ch * ch) * phis[c][2], ch * phis[c][1])
            else:
                kappa[key] = ((h * ch * ch) * phis[c][j + 2], (h * ch) * phis[c][j + 1])
        return kappa[key]

    def nonlinear(qq, vv, trig=None):
        vr = _rows(vv)
        acc = _accelerations(_trig(qq) if trig is None else trig, _rows(qq), vr, ctl, d)
        return jnp.stack(acc) - u * (vr[3] - vr[2])[None]  # q-part of N is exactly zero

    ns = [nonlinear(q, v, trig0)]
    s = [ns[0][3] - ns[0][2]]  # s of each N_k
    s_y = v[3] - v[2]

    def increment(e: _StackedEntry):
        kq, kv = coefficient((None, e.c))
        sig_q, sig_v = kq * s_y, kv * s_y
        for key, members in e.groups:
            sg = _lincomb(members, s)
            kq, kv = coefficient(key)
            sig_q, sig_v = sig_q + kq * sg, sig_v + kv * sg
        cv = v if e.c == 1.0 else e.c * v
        dq = h * (cv + h * _lincomb(e.aq, ns)) + sig_q[None] * u
        dv = h * _lincomb(e.av, ns) + sig_v[None] * u
        return dq, dv

    for e in entries[:-1]:
        dq, dv = increment(e)
        n_new = nonlinear(q + dq, v + dv)
        ns.append(n_new)
        s.append(n_new[3] - n_new[2])
    # increment y_{n+1} − y_n = (e^{hℒ} − I) y_n + h Σ b_j N_j, returned as such so that the caller
    # can add it with compensated summation
    return increment(entries[-1])


def _step_tuples(q, v, ctl, d: _Derived, h, tableau=HOCHBRUCK_OSTERMANN, branchless=False):
    """The step of :func:`_step` written out per component (4-tuples q, v): the former kernel,
    kept as an independent formulation that tests compare the stacked one with.

    ``branchless``: evaluate the φ-functions without :func:`_phis`' branch (the same bits: the
    branch only skips work that the selection discards). For a few flights the branch's control
    flow costs more than the work it skips (one flight: 1.3 ms against 3.0 ms per 41-frame call,
    measured 2026-12-02 under load 3-5)."""
    trig0 = _trig(q)
    u, lam = _damper(trig0, d)
    phis_of = (lambda z: phi_functions(z, 5)) if branchless else _phis
    phis = {c: phis_of(c * h * lam) for c in sorted(set(tableau["c"]) - {0.0} | {1.0})}

    def nonlinear(qq, vv, trig=None):
        acc = _accelerations(_trig(qq) if trig is None else trig, qq, vv, ctl, d)
        s = vv[3] - vv[2]
        return tuple(acc[i] - u[i] * s for i in range(4))  # q-part of N is exactly zero

    def combination(coeffs, ns):
        """h Σ_j Σ_terms w·φ_j(c hℒ) N_j, as (dq, dv); one φ application per distinct (j, c)."""
        groups: dict[tuple[int, float], list] = {}
        for terms, n in zip(coeffs, ns):
            for w, j, c in terms:
                groups.setdefault((j, c), []).append((w, n))
        dq = [0.0] * 4
        dv = [0.0] * 4
        for (j, c), members in groups.items():
            vec = tuple(sum(w * n[i] for w, n in members) for i in range(4))
            pq, pv = _phi_apply(j, c * h, phis[c], u, None, vec)
            for i in range(4):
                dq[i] = dq[i] + h * pq[i]
                dv[i] = dv[i] + h * pv[i]
        return dq, dv

    ns = []
    for c_i, a_i in zip(tableau["c"], tableau["a"]):
        if c_i == 0.0:
            ns.append(nonlinear(q, v, trig0))
            continue
        eq, ev = _phi_apply(0, c_i * h, phis[c_i], u, q, v)
        dq, dv = combination(a_i, ns)
        ns.append(
            nonlinear(tuple(a + b for a, b in zip(eq, dq)), tuple(a + b for a, b in zip(ev, dv)))
        )
    # increment y_{n+1} − y_n = (e^{hℒ} − I) y_n + h Σ b_j N_j, returned as such so that the caller
    # can add it with compensated summation
    s = v[3] - v[2]
    cq, cv = h * h * phis[1.0][2] * s, h * phis[1.0][1] * s
    dq, dv = combination(tableau["b"], ns)
    return (
        tuple(h * v[i] + cq * u[i] + dq[i] for i in range(4)),
        tuple(cv * u[i] + dv[i] for i in range(4)),
    )


def exprk_step(q, v, controls, k: BodyConstants, h, tableau=HOCHBRUCK_OSTERMANN):
    """Increment of (q, v) over one step h. ``q = (x, y, θ, φ)``, ``v = (ẋ, ẏ, θ̇, φ̇)``: 4-tuples."""
    d = _derived(k)
    dq, dv = _step(jnp.stack(q), jnp.stack(v), _control_terms(controls, d), d, h, tableau)
    return _rows(dq), _rows(dv)


def _kahan_add(y, comp, inc):
    """Compensated y + inc: float32 states would otherwise random-walk by ~1 ulp per step."""
    yk = inc - comp
    t = y + yk
    return t, (t - y) - yk


# --- the graded start ---------------------------------------------------------------------------

#: The first steps of a flight grow geometrically by this ratio from ``GRADE_FIRST / |λ|``: they
#: resolve the ~15 µs boundary layer in which an arbitrary initial φ̇₀ − θ̇₀ relaxes onto the
#: damper's slow manifold. Measured (40 S3 flights with the largest |φ̇₀ − θ̇₀|, float64, 96 steps):
#: ratio 1.3 gives a worst error of 9.8e-9, 1.6 gives 2.1e-8, 2.0 gives 7.8e-8; the previous
#: grading (four sub-steps, fixed fractions of the first step) 1.3e-7 at 96 and 6e-8 at 384 steps.
#: float32, whose round-off floor is ~1e-6, needs fewer: over 4,000 S3 flights (seed 1, against
#: float64 at 5,120 steps; 2026-12-02 03:25 UTC) the worst / median error was 1.85e-6 / 6.5e-8 with
#: 10 graded steps (first 0.1/|λ|, ratio 2), 1.80e-6 / 9.5e-8 with 5 (first 0.3/|λ|, ratio 3),
#: 1.88e-6 / 1.0e-7 with 4 (1.0, 3) and 2.44e-6 / 1.4e-7 with 5 (0.1, 4): five fewer of 34 steps
#: at the same worst error.
GRADE_RATIO = {"float32": 3.0, "float64": 1.3}
#: The first graded step, times |λ|_max (see :data:`GRADE_RATIO`).
GRADE_FIRST = {"float32": 0.3, "float64": 0.1}


def stiff_rate_bound(k: BodyConstants, xp=np):
    """max |λ| (s⁻¹) of the damper mode over every joint angle: λ = −c bᵀ S⁻¹ b depends on θ and φ
    only through cos(φ − θ), and is monotone in it, so the extremes are at cos = ±1."""
    m = k.m1 + k.m2
    p1, p2 = k.m1 * k.L1, k.m2 * k.L2
    s11 = k.I1 + k.m1 * k.L1**2 - p1 * p1 / m
    s22 = k.I2 + k.m2 * k.L2**2 - p2 * p2 / m
    out = []
    for cosd in (-1.0, 1.0):
        s12 = -p1 * p2 * cosd / m
        out.append(k.c * (s11 + s22 + 2 * s12) / (s11 * s22 - s12 * s12))
    return xp.maximum(xp.abs(out[0]), xp.abs(out[1]))


def graded_start(dt1, h, lam_max, ratio, xp=np, first=GRADE_FIRST["float64"]):
    """The graded first steps inside the first output interval of length ``dt1`` (regular step h).

    Returns ``(h0, n_graded, covered)``: sub-steps ``h0·ratio^j`` for ``j < n_graded`` covering
    ``covered`` s, all shorter than h and together at most half the interval; the first is
    ``first / lam_max`` (or h, if shorter).
    """
    h0 = xp.minimum(first / xp.maximum(lam_max, 1e-30), h)
    # largest G with h0 r^(G−1) < h and h0 (r^G − 1)/(r − 1) <= dt1 / 2
    g_step = xp.floor(xp.log(h / h0) / math.log(ratio) + 1.0 - 1e-9)
    g_half = xp.floor(xp.log1p(0.5 * dt1 * (ratio - 1.0) / h0) / math.log(ratio) + 1e-9)
    n = xp.maximum(xp.minimum(g_step, g_half), 0.0)
    covered = h0 * (ratio**n - 1.0) / (ratio - 1.0)
    return h0, n, covered


def _run(carry, ctl, d: _Derived, hs, ns, grade, branchless=False):
    """Integrate the stacked carry (q, v, cq, cv), each (4, ...), over segments of ``ns[i]`` steps of ``hs[i]``,
    the first segment preceded by ``grade = (h0, ratio, n)`` geometric sub-steps h0·ratioʲ (n may
    be 0); returns the carry and the (8, ...) state after every segment, stacked (M, 8, ...).
    One traced step serves graded and regular steps (the compiled program stays small)."""
    h0, ratio, n_graded = grade

    def step(c, h):
        q, v, cq, cv = c
        dq, dv = _step(q, v, ctl, d, h, branchless=branchless)
        q, cq = _kahan_add(q, cq, dq)
        v, cv = _kahan_add(v, cv, dv)
        return q, v, cq, cv

    def segment(c, inputs):
        h, n, first = inputs
        g = jnp.where(first, n_graded, 0)

        def body(j, cc):
            jj = jnp.minimum(j, g).astype(h.dtype)
            return step(cc, jnp.where(j < g, h0 * ratio**jj, h))

        c = jax.lax.fori_loop(0, n + g, body, c)
        q, v = c[0], c[1]
        return c, jnp.stack([q, v], axis=1).reshape((8, *q.shape[1:]))

    first = jnp.arange(hs.shape[0]) == 0
    return jax.lax.scan(segment, carry, (hs, ns, first))


def _carry(y0):
    """(q, v, compensation of q, of v): stacked (4, ...) arrays from the (8, ...) state."""
    y0 = jnp.asarray(y0)
    q0 = y0.reshape((4, 2, *y0.shape[1:]))[:, 0]
    v0 = y0.reshape((4, 2, *y0.shape[1:]))[:, 1]
    return q0, v0, jnp.zeros_like(q0), jnp.zeros_like(v0)


def _chunk_kernel(carry, controls, k: BodyConstants, hs, ns, grade, branchless=False):
    """Compiled kernel of :func:`simulate`: carry of four (4, N) arrays — or the (8, N)
    initial states, made into the carry inside the compiled call (no eager JAX op per call) —,
    controls (3, N), hs (M,) step lengths, ns (M,) int32 step counts, grade (h0, ratio, n graded
    sub-steps before the first segment). Returns (carry, (M, 8, N))."""
    if not isinstance(carry, tuple):
        carry = _carry(carry)
    dtype = carry[0].dtype
    k = BodyConstants(*(jnp.asarray(c, dtype) for c in k))
    d = _derived(k)
    ctl = _control_terms(tuple(controls), d)
    grade = (jnp.asarray(grade[0], dtype), jnp.asarray(grade[1], dtype), grade[2])
    return _run(carry, ctl, d, hs.astype(dtype), ns, grade, branchless)


#: XLA's compile options of :func:`simulate`'s kernel on the CPU: no ``fusion`` pass. The step is
#: one long elementwise graph whose values have many consumers, and XLA's CPU fusion copies each
#: shared value into every consumer's loop: the fused step body held 119 fusions with 9,780
#: arithmetic operations per flight (264 sines and cosines where the algorithm has 20), about ten
#: times the unfused graph's ~1,000 operations. Unfused, every operation is one vectorised loop
#: over the chunk, computed once. Measured A/B in one process, 1 thread, float32 S3 flights
#: (2026-12-02 03:00-03:10 UTC, load 3.6-5.7 from other sessions): chunk 2048: 22,837 against
#: 5,470 flights/s; chunk 256: 23,105 against 12,499; chunk 64: 16,973 against 13,183; chunk 16:
#: 6,360 against 5,414. Compiling is ~3x faster too (6 s against 20 s). One 41-frame flight is
#: slower unfused (3.8 ms against 2.3 ms, dispatch of ~1,300 operations per step), but fused and
#: unfused results differ in the last bit (the fused loops contract and reorder differently), and a
#: flight's result must not depend on the batch it is simulated in, so every size runs unfused:
#: results are bit-identical for 1, 16 and 64 flights and for any chunking (tests/test_moth.py).
#: Only on the CPU: other backends compile with their defaults. (Since 2026-12-02 06:00 UTC the
#: CPU runs the lane kernel instead, :data:`CPU_KERNEL`; this one stays as ``CPU_KERNEL = "jax"``.)
#:
#: Tried and not kept (2026-12-02 03:45-03:52 UTC): fusion on, with every shared value (sines and
#: cosines, u, λ, φ-functions, each stage's N, σ and increment) materialized through a reduction
#: (XLA never fuses a reduction into its readers): 116,032 flights/s at 256 flights per call
#: against 64,175 for this kernel at 4,096 (1 thread, load 1.5-2.5, best of 3), one 41-frame flight
#: 1.3-1.6 ms against 2.3-3.0 ms; but its results depend on the call's lane count (a flight in
#: 8 and in 256 lanes ended 2.7e-6 apart, relative, after 45 steps; 3 to 300 lanes agreed in one
#: run, 2,048 and 4,096 did not), so a flight would not get the same answer alone and in a
#: dataset. Whoever finds how to pin XLA's CPU loop emission (the
#: likely cause: multiply-add contraction and vector/scalar tails that differ with the size)
#: gets ~1.8x here.
UNFUSED_OPTIONS = {"xla_disable_hlo_passes": "fusion"}

_integrate_chunk = jax.jit(_chunk_kernel, static_argnames=("branchless",))
_integrate_chunk_unfused = jax.jit(
    _chunk_kernel, static_argnames=("branchless",), compiler_options=UNFUSED_OPTIONS
)


def _kernel_for(on_cpu: bool):
    """The compiled kernel of :func:`simulate` (see :data:`UNFUSED_OPTIONS`)."""
    return _integrate_chunk_unfused if on_cpu else _integrate_chunk


# --- public API ------------------------------------------------------------------------------


def _as_float_array(name, a, last):
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be numeric, with last axis of length {last}; could not convert it: {err}"
        ) from None
    if arr.ndim == 0 or arr.shape[-1] != last:
        raise ValueError(f"{name} must have shape (..., {last}); got shape {arr.shape}.")
    return require_finite(name, arr)


def require_finite(name: str, arr: np.ndarray) -> np.ndarray:
    """Return ``arr``, or raise ValueError naming the array and its first NaN/inf entry."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (first at index "
            f"{tuple(int(i) for i in bad)}); every entry must be finite."
        )
    return arr


def check_times(t) -> np.ndarray:
    """Validate an output time grid: 1-D, starting at 0, strictly increasing, finite."""
    if t is None:
        return np.array([0.0, REFERENCE_SPAN])
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t must be a 1-D array of at least two times; got shape {t.shape}.")
    if not np.all(np.isfinite(t)):
        raise ValueError("t contains NaN or infinite values.")
    if t[0] != 0.0:
        raise ValueError(f"t must start at 0 (the initial state's time); got t[0] = {t[0]:g}.")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t must be strictly increasing.")
    return t


#: Bounds of every input for which :func:`simulate` is accurate (see its docstring for the
#: derivation). Values outside are refused with this range in the message.
INPUT_LIMITS = {
    "x": 1e5,
    "y": 1e5,  # cm: float32 keeps 1e-2 cm resolution
    "xd": 1e5,
    "yd": 1e5,  # cm/s
    "theta": 1e3,
    "phi": 1e3,  # rad: float32 keeps 1e-4 rad resolution
    "thetad": 1e3,
    "phid": 1e3,  # rad/s
    "F": 2e5,  # dyn
    "alpha": 1e3,  # rad
    "tau": 1e6,  # dyn·cm
}
#: Range of the length scale ``s`` accepted by :func:`simulate`.
SCALE_RANGE = (0.25, 4.0)
#: Longest span one call integrates (s), and the most steps per 20 ms.
MAX_SPAN = 3600.0
MAX_STEPS = 100_000
#: A flight whose angular rate ω times the step h exceeds this at an output time is refused: the
#: explicit part of the scheme no longer resolves its rotation (S3 flights reach ωh ≈ 0.3).
MAX_ROTATION_PER_STEP = 1.0
MAX_CHUNK = 1 << 24
#: Chunks of at most this many flights evaluate the φ-functions without a branch (see
#: :func:`_step`): the app's single flights and small batches.
SMALL_BATCH = 16
#: Lane-steps per compiled call (bounds the time between progress events and cancel checks).
CALL_LANE_STEPS = 1 << 21


_CPUS = os.cpu_count() or 1


@lru_cache(maxsize=1)
def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def _default_chunk() -> int:
    # CPU: 4,096 flights per call (unfused kernel, 1 thread, 16,384 flights, 03:12 UTC, load 2.4-3.8:
    # best of 3 chunk 2,048 24,132/s, 4,096 28,403/s, 8,192 41,654/s, 16,384 29,265/s; medians
    # 22-25 k/s for all four: flat from 4,096 on, and smaller chunks give progress events sooner)
    return 1 << 22 if jax.default_backend() != "cpu" else 1 << 12


def _check_int(name, value, lo, hi, what):
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}] ({what}); got {value!r}.")
    if not lo <= int(value) <= hi:
        raise ValueError(
            f"{name} = {value} is outside [{lo}, {hi}] ({what}); choose a value in that range."
        )
    return int(value)


@lru_cache(maxsize=1)
def _limit_vectors():
    """INPUT_LIMITS as (8,) and (3,) arrays in state and control order (inf: no limit)."""
    return tuple(
        np.array([INPUT_LIMITS.get(n, np.inf) for n in names])
        for names in (STATE_NAMES, CONTROL_NAMES)
    )


def _check_limits(s0, u0, params: MothParams):
    lim_s, lim_u = _limit_vectors()
    inside = (np.abs(s0) <= lim_s).all() and (np.abs(u0) <= lim_u).all()
    if inside and SCALE_RANGE[0] <= params.s <= SCALE_RANGE[1]:
        return  # the common case, in two array operations (a single flight is ~0.1 ms in all)
    names = [*STATE_NAMES, *CONTROL_NAMES]
    units = [*STATE_UNITS, *CONTROL_UNITS]
    for j, name in enumerate(names):
        col = s0[..., j] if j < 8 else u0[..., j - 8]
        lim = INPUT_LIMITS.get(name)
        if lim is None or col.size == 0:
            continue
        over = np.abs(col) > lim
        if over.any():
            bad = tuple(int(i) for i in np.argwhere(over)[0])
            lo = 0 if name == "F" else -lim
            raise ValueError(
                f"{'state0' if j < 8 else 'controls'}: {name} = {col[bad]:g} {units[j]} at index "
                f"{bad} is outside [{lo:g}, {lim:g}] {units[j]}, the range in which simulate is "
                "accurate (mothlab.moth.integrate.INPUT_LIMITS); S3 samples stay far inside it."
            )
    if not SCALE_RANGE[0] <= params.s <= SCALE_RANGE[1]:
        raise ValueError(
            f"length scale s = {params.s:g} is outside [{SCALE_RANGE[0]:g}, "
            f"{SCALE_RANGE[1]:g}], the range in which simulate is accurate (the "
            "damper's stiffness grows as s⁻⁵ and the step counts are tuned for s ≈ 1); "
            "choose s in that range."
        )


def _bucket(n: int, fine: bool) -> int:
    """Round n up to a compiled size: powers of two (small batches, ≤ 2× of little work) or
    2^e·{16…31}/16 (chunks: ≤ 6.25 % padding), so that few shapes are compiled."""
    if n <= 1:
        return 1
    p = 1 << (n - 1).bit_length()
    if not fine or p < 32:
        return p
    step = p // 32
    return -(-n // step) * step


def plan_chunks(n_total: int, chunk: int | None, workers: int) -> tuple[int, int]:
    """(chunk size, number of chunks) for n_total flights: chunks of equal size, their number a
    multiple of the worker count (no core idles on a last, lone chunk), padded by at most a
    sixteenth. Small batches (< 64 per worker) run as one call: below that, a thread's dispatch
    costs more than the unfused kernel's work (1 thread, 03:09 UTC: 17,000 flights/s at chunk 64
    against 23,000 at 256 and 6,400 at 16)."""
    if n_total == 0:
        return 1, 0
    if chunk is not None:
        return chunk, -(-n_total // chunk)
    c_max = _default_chunk()
    if n_total < 64 * workers:
        size = _bucket(n_total, fine=n_total > 256)
        return size, 1
    n_chunks = -(-n_total // c_max)
    n_chunks = -(-n_chunks // workers) * workers
    size = _bucket(-(-n_total // n_chunks), fine=True)
    return size, -(-n_total // size)


def _schedule(t, per_span: int, k: BodyConstants, ratio: float, first: float):
    """Host-side step plan: graded start (h0, n) and segments (h, n, is-an-output-time)."""
    dts = np.diff(t)
    n = np.maximum(1, np.ceil(dts / REFERENCE_SPAN * per_span - 1e-9)).astype(np.int64)
    hs = dts / n
    h0, n_graded, covered = graded_start(
        dts[0], hs[0], float(stiff_rate_bound(k)), ratio, first=first
    )
    rest = dts[0] - covered
    n[0] = max(1, math.ceil(rest / hs[0] - 1e-9))
    hs[0] = rest / n[0]
    return (float(h0), int(n_graded)), hs, n


def _segments(hs, n, block_steps: int):
    """Split intervals into segments of at most ``block_steps`` steps, grouped into blocks of at
    most ``block_steps`` steps; returns a list of blocks [(h (M,), n (M,), record (M,))] padded to a
    common length M with empty segments."""
    seg_h, seg_n, seg_rec = [], [], []
    for h, m in zip(hs, n):
        m = int(m)
        while m > block_steps:
            seg_h.append(h), seg_n.append(block_steps), seg_rec.append(False)
            m -= block_steps
        seg_h.append(h), seg_n.append(m), seg_rec.append(True)
    blocks, cur, steps = [], [], 0
    for item in zip(seg_h, seg_n, seg_rec):
        if cur and steps + item[1] > block_steps:
            blocks.append(cur)
            cur, steps = [], 0
        cur.append(item)
        steps += item[1]
    blocks.append(cur)
    width = max(len(b) for b in blocks)
    out = []
    for b in blocks:
        b = b + [(0.0, 0, False)] * (width - len(b))
        out.append(tuple(np.array(col) for col in zip(*b)))
    return out


_DEFAULT_BODY = None


def _default_body():
    """The default MothParams and its constants, made once (a Parameterized costs ~1 ms to build,
    more than a single flight's compiled call). Never handed out, so never mutated."""
    global _DEFAULT_BODY
    if _DEFAULT_BODY is None:
        p = MothParams()
        _DEFAULT_BODY = (p, p.constants())
    return _DEFAULT_BODY


@lru_cache(maxsize=64)
def _plan(
    t_bytes: bytes, per_span: int, k: BodyConstants, ratio: float, first: float, block_steps: int
):
    """Step plan of :func:`simulate` for one time grid (cached: the app asks for the same grid
    again and again): grade, hs, n, blocks of segments, and the mask of recorded segments."""
    t = np.frombuffer(t_bytes, dtype=np.float64)
    grade, hs, n = _schedule(t, per_span, k, ratio, first)
    blocks = _segments(hs, n, block_steps)
    for a in (hs, n, *(a for b in blocks for a in b)):
        a.setflags(write=False)
    record = np.concatenate([b[2] for b in blocks])
    record.setflags(write=False)
    return grade, hs, n, blocks, record


def lane_setup(controls, k):
    """Per flight, once (traced for the lane kernel, :mod:`mothlab.moth.lanes`): the control
    terms and the derived body constants from controls (3,) and a 17-tuple of body constants."""
    d = _derived(BodyConstants(*k))
    return tuple(_control_terms(tuple(controls), d)), tuple(d)


def lane_step(q, v, cq, cv, ctl, d, h, branchless=False):
    """One step with compensated accumulation, as :func:`_run` does it (traced for the lane
    kernel, :mod:`mothlab.moth.lanes`): q, v and their compensations (4,) each, the control terms
    and derived constants as tuples, the step h."""
    dq, dv = _step(q, v, tuple(ctl), _Derived(*d), h, branchless=branchless)
    q, cq = _kahan_add(q, cq, dq)
    v, cv = _kahan_add(v, cv, dv)
    return q, v, cq, cv


#: The CPU kernel of :func:`simulate`: ``"lanes"``, the numba kernel of :mod:`mothlab.moth.lanes`
#: (the same step, generated from this module's jaxpr, one flight per vector lane), or ``"jax"``,
#: the unfused JAX kernel below (what other backends run, fused). Measured A/B in one process,
#: float32 S3 flights (2026-12-02 05:41 UTC, load 1.8-3.5): 65,536 flights at 112-185 k/s
#: (lanes) against 55-72 k/s (jax), one 41-frame flight 0.28-0.43 ms against ~4 ms.
CPU_KERNEL = "lanes"


def _lane_segments(t_bytes: bytes, per_span: int, k: BodyConstants, mode: str):
    """Step plan of the lane kernel: (segments h (G+T-1,), n, recorded, interval steps hs) —
    the graded sub-steps one segment each, then every output interval's regular steps."""
    t = np.frombuffer(t_bytes, dtype=np.float64)
    (h0, g), hs, n = _schedule(t, per_span, k, GRADE_RATIO[mode], GRADE_FIRST[mode])
    dtype = np.dtype(mode)
    ratio = np.asarray(GRADE_RATIO[mode], dtype)
    graded = np.asarray(h0, dtype) * ratio ** np.arange(g).astype(dtype)
    seg_h = np.concatenate([graded, hs.astype(dtype)])
    seg_n = np.concatenate([np.ones(g, np.int64), n])
    seg_rec = np.concatenate([np.zeros(g, bool), np.ones(len(n), bool)])
    return seg_h, seg_n, seg_rec, hs


def _lane_windows(seg_h, seg_n, seg_rec, call_steps: int):
    """Windows of at most ``call_steps`` steps: (h (S,), record (S,) bool, recorded count)."""
    h_buf, r_buf, filled = [], [], 0
    for h, n, rec in zip(seg_h, seg_n, seg_rec):
        n = int(n)
        while n > 0:
            take = min(n, call_steps - filled)
            h_buf.append(np.full(take, h, seg_h.dtype))
            r = np.zeros(take, bool)
            n -= take
            r[-1] = bool(rec) and n == 0
            r_buf.append(r)
            filled += take
            if filled == call_steps:
                rr = np.concatenate(r_buf)
                yield np.concatenate(h_buf), rr, int(rr.sum())
                h_buf, r_buf, filled = [], [], 0
    if filled:
        rr = np.concatenate(r_buf)
        yield np.concatenate(h_buf), rr, int(rr.sum())


@lru_cache(maxsize=64)
def _lane_plan(t_bytes: bytes, per_span: int, k: BodyConstants, mode: str, call_steps: int):
    """(windows or None, segments, body constants in the dtype): the windows are kept (cached)
    when the whole plan is small, as the app's repeated flights on one grid are."""
    seg_h, seg_n, seg_rec, hs = _lane_segments(t_bytes, per_span, k, mode)
    windows = None
    if int(seg_n.sum()) <= 1 << 16:
        windows = tuple(_lane_windows(seg_h, seg_n, seg_rec, call_steps))
        for w in windows:
            w[0].setflags(write=False)
            w[1].setflags(write=False)
    kd = np.array(tuple(k), np.dtype(mode))
    kd.setflags(write=False)
    return windows, (seg_h, seg_n, seg_rec), hs, kd, float(seg_n.sum())


def _progress_counter(progress, n_total: int, lane_steps: float):
    """``add(steps, m)``: count ``steps`` more steps of ``m`` flights done (thread-safe) and
    report the fraction of all ``lane_steps × n_total`` to ``progress``."""
    import threading

    from mothlab.progress import report

    lock, done = threading.Lock(), [0.0]

    def add(steps, m):
        if progress is None:
            return
        with lock:
            done[0] += float(steps) * m
            frac = done[0] / (lane_steps * n_total)
        report(
            progress,
            frac,
            f"simulating {n_total:,} flights",
            done=int(frac * n_total),
            total=n_total,
        )

    return add


def _in_threads(run, size: int, n_chunks: int, workers: int) -> None:
    """``run(start)`` for every chunk: in threads, one per core (both kernels release the GIL
    while they run, and each call runs on one core)."""
    starts = [i * size for i in range(n_chunks)]
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)


def _simulate_lanes(s0, u0, k, t, mode, per_span, size, n_chunks, workers, out, progress, cancel):
    """The CPU path of :func:`simulate`: chunks of ``size`` flights through the lane kernel, in
    threads; fills ``out`` and returns the interval steps (for the result checks)."""
    from mothlab.progress import check_cancel

    from .lanes import BLOCK, LANE_VALUES, lane_module

    mod = lane_module(mode, lane_setup, lane_step)
    dtype = np.dtype(mode)
    n_total = s0.shape[0]
    y0 = np.ascontiguousarray(s0, dtype)
    c0 = np.ascontiguousarray(u0, dtype)
    lanes = -(-min(size, n_total) // BLOCK) * BLOCK
    call_steps = min(max(CALL_LANE_STEPS // lanes, 64), 1 << 16)
    windows, segs, hs, kd, total_steps = _lane_plan(t.tobytes(), per_span, k, mode, call_steps)
    out[:, 0] = y0
    count = _progress_counter(progress, n_total, total_steps)

    def run(start):
        m = min(start + size, n_total) - start
        st = np.empty((-(-m // BLOCK), LANE_VALUES * BLOCK), dtype)
        mod.init(y0, c0, kd, st, start, m)
        row = 1
        for h, rec, n_rec in windows if windows is not None else _lane_windows(*segs, call_steps):
            check_cancel(cancel, "simulate was cancelled; nothing was returned")
            mod.advance(st, h, rec, out, start, m, row)
            row += n_rec
            count(len(h), m)

    _in_threads(run, size, n_chunks, workers)
    return hs


def _simulate_jax(
    s0, u0, k, t, mode, per_span, size, n_chunks, workers, out, progress, cancel, on_cpu
):
    """The path of :func:`simulate` on other backends (and on the CPU with ``CPU_KERNEL = "jax"``):
    chunks of ``size`` flights through the JAX kernel, in threads; fills ``out`` and returns the
    interval steps (for the result checks)."""
    from mothlab.progress import check_cancel

    precise = mode == "float64"
    dtype = np.dtype(mode)
    n_total = s0.shape[0]
    kernel = _kernel_for(on_cpu)
    block_steps = int(np.clip(CALL_LANE_STEPS // size, 64, 1 << 16))
    grade, hs, n, blocks, record = _plan(
        t.tobytes(), per_span, k, GRADE_RATIO[mode], GRADE_FIRST[mode], block_steps
    )
    lane_steps = float(np.sum(n) + grade[1])
    count = _progress_counter(progress, n_total, lane_steps)

    def run(start):
        stop = min(start + size, n_total)
        m = stop - start
        ys = np.zeros((8, size), dtype)
        us = np.zeros((3, size), dtype)
        ys[:, :m] = s0[start:stop].T
        us[:, :m] = u0[start:stop].T
        # padding lanes hold a valid resting body (φ = θ + π), not zeros: nothing non-finite
        ys[6, m:] = np.pi
        res = []
        with jax.enable_x64(precise):
            carry = ys  # made into the carry inside the first compiled call
            ctl = us
            grade_arr = (
                np.asarray(grade[0]),
                np.asarray(GRADE_RATIO[mode]),
                np.asarray(grade[1], np.int32),
            )
            for i, (bh, bn, _) in enumerate(blocks):
                check_cancel(cancel, "simulate was cancelled; nothing was returned")
                g = grade_arr if i == 0 else (grade_arr[0], grade_arr[1], np.asarray(0, np.int32))
                carry, y = kernel(
                    carry,
                    ctl,
                    k,
                    bh,
                    np.asarray(bn, np.int32),
                    g,
                    branchless=size <= SMALL_BATCH,
                )
                res.append(np.asarray(y))
                count(np.sum(bn) + (grade[1] if i == 0 else 0), m)
        traj = np.concatenate(res, axis=0)[record]
        out[start:stop, 0] = s0[start:stop]
        out[start:stop, 1:] = np.moveaxis(traj[:, :, :m], 2, 0)
        return m

    _in_threads(run, size, n_chunks, workers)
    return hs


def simulate(
    state0,
    controls,
    params: MothParams | None = None,
    t=None,
    precise: bool = False,
    *,
    steps: int | None = None,
    chunk: int | None = None,
    workers: int | None = None,
    progress=None,
    cancel=None,
) -> np.ndarray:
    """Simulate 20 ms flights (or any span) of the hawkmoth under constant controls.

    Parameters
    ----------
    state0 : array (..., 8)
        Initial states ``[x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]`` (cm, cm/s, rad, rad/s).
    controls : array (..., 3)
        Constant controls ``[F, α, τ]`` (dyn, rad, dyn·cm). Leading shapes broadcast with state0's.
    params : MothParams, optional
        The body (default: the published S1 set).
    t : array (T,), optional
        Output times in s, starting at 0, increasing, at most :data:`MAX_SPAN` (default
        ``[0, 0.02]``).
    precise : bool
        Compute in float64 with more steps (:data:`DEFAULT_STEPS`) instead of float32.
    steps : int, optional
        Steps per 20 ms in [1, :data:`MAX_STEPS`], overriding :data:`DEFAULT_STEPS` (for
        convergence studies).
    chunk, workers : int, optional
        Trajectories per compiled call (1 … 2²⁴; default: planned so that padding stays under
        1/16 and every core gets equal work), and CPU threads running chunks side by side (1 …
        256; default all cores on CPU). Results do not depend on either (bit for bit).
    progress : callable(Progress), optional
        :mod:`mothlab.progress` events (payload ``done``, ``total`` flights), at the start and after
        each compiled call (long spans are split into calls of bounded length, so events come at
        least about once a second).
    cancel : callable() -> bool, optional
        Polled between compiled calls; raises :class:`mothlab.progress.Cancelled`.

    Returns
    -------
    numpy array (..., T, 8), float32 (float64 when ``precise``).

    What it refuses (ValueError, with the allowed range)
    ----------------------------------------------------
    Inputs outside :data:`INPUT_LIMITS` — |x|, |y| ≤ 1e5 cm; |ẋ|, |ẏ| ≤ 1e5 cm/s; |θ|, |φ|, |α|
    ≤ 1e3 rad; |θ̇|, |φ̇| ≤ 1e3 rad/s; 0 ≤ F ≤ 2e5 dyn; |τ| ≤ 1e6 dyn·cm — and a length scale
    outside :data:`SCALE_RANGE` [0.25, 4]. Derivation: the scheme is explicit in everything but the
    damper, so its error grows with the rotation per step ωh (S3 flights reach ω ≈ 340 rad/s,
    ωh ≈ 0.3 at 24 steps, worst error 2e-6); rates up to 1e3 rad/s, forces up to 4.5× and torques
    up to 10× the S3 maxima keep ωh ≲ 1 over a 20 ms flight. Positions and angles are bounded so
    that float32 keeps 1e-2 cm and 1e-4 rad of resolution. The stiff rate grows as s⁻⁵, which the
    graded start absorbs between s = 0.25 and 4. A flight that spins up beyond one radian per step
    at an output time (:data:`MAX_ROTATION_PER_STEP`; long spans under a constant torque do) and
    any non-finite result are refused after the run, naming the first such flight. Spans beyond
    :data:`MAX_SPAN` and step counts outside [1, :data:`MAX_STEPS`] are refused before it; step
    counts are int64 (a 3600 s span at 1e5 steps per 20 ms is 1.8e10 steps).

    Accuracy: the final state's error divided by each variable's range over S3 samples (module
    docstring: method, table).
    """
    from mothlab.progress import report

    s0 = _as_float_array("state0", state0, 8)
    u0 = _as_float_array("controls", controls, 3)
    try:
        lead = np.broadcast_shapes(s0.shape[:-1], u0.shape[:-1])
    except ValueError:
        raise ValueError(
            f"state0 {s0.shape} and controls {u0.shape} have leading shapes that do not broadcast."
        ) from None
    if np.any(u0[..., 0] < 0):
        bad = np.argwhere(u0[..., 0] < 0)[0]
        raise ValueError(
            f"controls: the wing force F must be >= 0 dyn (first negative at index "
            f"{tuple(int(i) for i in bad)}: F = {u0[tuple(bad)][0]:g}); a force pointing "
            "the other way is F > 0 with α + π."
        )
    if params is None:
        params, k = _default_body()
    else:
        k = params.constants()
    _check_limits(s0, u0, params)
    t = check_times(t)
    if t[-1] > MAX_SPAN:
        raise ValueError(
            f"t ends at {t[-1]:g} s, beyond the longest span simulate integrates "
            f"({MAX_SPAN:g} s = one hour of flight); split it into several calls, "
            "each starting from the last state."
        )
    mode = "float64" if precise else "float32"
    per_span = (
        DEFAULT_STEPS[mode]
        if steps is None
        else _check_int("steps", steps, 1, MAX_STEPS, "steps per 20 ms")
    )
    if chunk is not None:
        chunk = _check_int("chunk", chunk, 1, MAX_CHUNK, "trajectories per compiled call")
    on_cpu = _on_cpu()
    workers = (
        _check_int("workers", workers, 1, 256, "threads")
        if workers is not None
        else (_CPUS if on_cpu else 1)
    )
    dtype = np.float64 if precise else np.float32
    n_total = int(np.prod(lead))
    s0 = np.broadcast_to(s0, (*lead, 8)).reshape(n_total, 8)
    u0 = np.broadcast_to(u0, (*lead, 3)).reshape(n_total, 3)
    out = np.empty((n_total, len(t), 8), dtype=dtype)
    report(progress, 0.0, f"simulating {n_total:,} flights", done=0, total=n_total)
    if n_total == 0:
        return out.reshape(*lead, len(t), 8)

    size, n_chunks = plan_chunks(n_total, chunk, workers)
    if on_cpu and CPU_KERNEL == "lanes":
        hs = _simulate_lanes(
            s0, u0, k, t, mode, per_span, size, n_chunks, workers, out, progress, cancel
        )
    else:
        hs = _simulate_jax(
            s0, u0, k, t, mode, per_span, size, n_chunks, workers, out, progress, cancel, on_cpu
        )
    _check_result(out, t, hs, s0, u0, lead)
    report(progress, 1.0, f"simulated {n_total:,} flights", done=n_total, total=n_total)
    return out.reshape(*lead, len(t), 8)


def _check_result(out, t, hs, s0, u0, lead):
    """Refuse non-finite results and flights that spun beyond what the step resolves."""

    def where(i):
        idx = f"flight {tuple(int(j) for j in np.unravel_index(i, lead))}" if lead else "the flight"
        return (
            f"{idx} (state0 {np.array2string(s0[i], precision=4)}, controls "
            f"{np.array2string(u0[i], precision=4)})"
        )

    finite = np.isfinite(out).all(axis=(1, 2)) if not np.isfinite(out).all() else None
    if finite is not None:
        i = int(np.argmin(finite))
        j = int(np.argmin(np.isfinite(out[i]).all(axis=1)))
        raise ValueError(
            f"simulate produced non-finite values for {where(i)}, first at t = "
            f"{t[j]:g} s ({int((~finite).sum())} flights in all); its inputs are "
            "beyond what the model can integrate."
        )
    h = np.concatenate([hs[:1], hs])  # step in force before each output time
    rate = np.maximum(np.abs(out[:, :, 5]), np.abs(out[:, :, 7])) * h[None, :]
    fast = rate.max(axis=1) > MAX_ROTATION_PER_STEP
    if fast.any():
        i = int(np.argmax(fast))
        j = int(np.argmax(rate[i] > MAX_ROTATION_PER_STEP))
        w = max(abs(out[i, j, 5]), abs(out[i, j, 7]))
        need = math.ceil(w * REFERENCE_SPAN / MAX_ROTATION_PER_STEP * 4)
        raise ValueError(
            f"{where(i)} spins at {w:.3g} rad/s at t = {t[j]:g} s, more than "
            f"{MAX_ROTATION_PER_STEP:g} rad per step: the result would not be "
            f"accurate. Use a shorter span or steps >= {need} per 20 ms."
        )


# --- a traceable span for closed loops (added by the fly helper, issue 11) --------------------


def step_span(
    state, controls, k: BodyConstants, span: float = REFERENCE_SPAN, *, steps: int | None = None
):
    """One span of flight under constant controls as a pure JAX function (jit/scan/vmap-able).

    ``state`` (8, ...) and ``controls`` (3, ...) are component-first arrays with any common
    trailing shape; ``k`` is a :class:`BodyConstants` of floats or of arrays broadcasting with
    that shape (one body per flight). Returns the (8, ...) state after ``span`` seconds in the
    state's dtype, computed by the same integrator, step count and graded first steps as
    ``simulate(state0, controls, params, t=[0, span])`` — so a closed loop that calls it once per
    control period equals a Python loop of ``simulate`` calls over those periods (to round-off
    on the CPU, where ``simulate`` runs the lane kernel: see :data:`CPU_KERNEL`).
    """
    y0 = jnp.asarray(state)
    dtype = y0.dtype
    mode = "float64" if dtype == jnp.float64 else "float32"
    per_span = steps or DEFAULT_STEPS[mode]
    n = max(1, math.ceil(span / REFERENCE_SPAN * per_span - 1e-9))
    h = span / n
    ratio = GRADE_RATIO[mode]
    kk = BodyConstants(*(jnp.asarray(c, dtype) for c in k))
    h0, n_graded, covered = graded_start(
        span, h, jnp.max(stiff_rate_bound(kk, jnp)), ratio, xp=jnp, first=GRADE_FIRST[mode]
    )
    rest = span - covered
    m = jnp.maximum(1, jnp.ceil(rest / h - 1e-9)).astype(jnp.int32)
    d = _derived(kk)
    ctl = _control_terms(tuple(jnp.asarray(controls, dtype)), d)
    carry = _carry(y0)
    grade = (h0.astype(dtype), jnp.asarray(ratio, dtype), n_graded.astype(jnp.int32))
    _, ys = _run(carry, ctl, d, (rest / m).astype(dtype)[None], m[None], grade)
    return ys[-1]
