"""Equations of motion of the two-body hawkmoth, M(θ, φ) q̈ = f(q, q̇, u) (SCIENCE.md §1).

Pure JAX functions on *component* arrays: a state is a tuple of eight arrays
``(x, ẋ, y, ẏ, θ, θ̇, φ, φ̇)`` of any common (broadcastable) shape, controls a tuple
``(F, α, τ)``. Working component-wise (structure of arrays) lets XLA fuse a whole right-hand side
into one loop over trajectories, which on a CPU is several times faster than an ``(..., 8)`` layout
with small matrix solves.

The 4×4 mass matrix has the block form ``[[m I₂, B], [Bᵀ, J]]`` with ``J`` diagonal, so the
accelerations follow in closed form from the 2×2 Schur complement ``S = J − BᵀB/m`` of the angular
block; ``S`` depends only on φ − θ.
"""

from __future__ import annotations

import jax.numpy as jnp

from .params import BodyConstants


def _schur(th, ph, k: BodyConstants):
    """Entries (S11, S12, S22) and determinant of S = J − BᵀB/m; all arrays like θ."""
    m = k.m1 + k.m2
    p1, p2 = k.m1 * k.L1, k.m2 * k.L2
    s11 = k.I1 + k.m1 * k.L1**2 - p1 * p1 / m
    s22 = k.I2 + k.m2 * k.L2**2 - p2 * p2 / m
    s12 = -p1 * p2 * jnp.cos(ph - th) / m
    return s11, s12, s22, s11 * s22 - s12 * s12


def solve_mass(th, ph, fx, fy, fth, fph, k: BodyConstants):
    """Solve M(θ, φ) q̈ = f for q̈ = (ẍ, ÿ, θ̈, φ̈) in closed form.

    Linear positions first eliminate: ``m a_xy = f_xy − B a_ang``, then ``S a_ang = f_ang − Bᵀ f_xy/m``.
    S is symmetric positive definite for any physical body (it is a Schur complement of the
    positive-definite M), so the 2×2 inverse never divides by zero.
    """
    m = k.m1 + k.m2
    p1, p2 = k.m1 * k.L1, k.m2 * k.L2
    sth, cth, sph, cph = jnp.sin(th), jnp.cos(th), jnp.sin(ph), jnp.cos(ph)
    # Bᵀ f_xy  with B = [[-p1 sθ, -p2 sφ], [p1 cθ, p2 cφ]]
    r1 = fth - (-p1 * sth * fx + p1 * cth * fy) / m
    r2 = fph - (-p2 * sph * fx + p2 * cph * fy) / m
    s11, s12, s22, det = _schur(th, ph, k)
    ath = (s22 * r1 - s12 * r2) / det
    aph = (s11 * r2 - s12 * r1) / det
    ax = (fx - (-p1 * sth * ath - p2 * sph * aph)) / m
    ay = (fy - (p1 * cth * ath + p2 * cph * aph)) / m
    return ax, ay, ath, aph


def drag(xd, yd, k: BodyConstants):
    """Aerodynamic drag forces (−D|ẋ|ẋ, −D|ẏ|ẏ) on the joint (dyn).

    ``D = ½ ρ (Cd_h S_h + Cd_a S_a)`` with ``Cd = 24/Re + 6/(1 + √Re) + 0.4`` and Re from the
    joint speed V. The Stokes part 24/Re is singular at V = 0 but its force
    ``6 μ S |ẋ|ẋ / (b V)`` is bounded (|ẋ| ≤ V): it is computed as ``|ẋ|·(ẋ/V)`` with a guarded V,
    so rest is exact (zero force) and never NaN.
    """
    v = jnp.sqrt(xd * xd + yd * yd)
    moving = v > 0
    v_safe = jnp.where(moving, v, 1.0)
    stokes = 0.0
    rest = 0.0
    for b, area in ((k.bhead, k.S_head), (k.bbutt, k.S_butt)):
        re = k.rhoA * v * (2 * b) / k.muA
        stokes = stokes + 6 * k.muA * area / b  # ½ρ S · 24 μ / (ρ V 2b) · V
        rest = rest + 0.5 * k.rhoA * area * (6 / (1 + jnp.sqrt(re)) + 0.4)
    # force = -(stokes/V + rest) |u| u ; stokes·|u|u/V written as stokes·|u|·(u/V)
    fx = -(stokes * jnp.where(moving, xd / v_safe, 0.0) + rest * xd) * jnp.abs(xd)
    fy = -(stokes * jnp.where(moving, yd / v_safe, 0.0) + rest * yd) * jnp.abs(yd)
    return fx, fy


def forces(state, controls, k: BodyConstants, *, damper=True):
    """Generalised forces f(q, q̇, u) = (f_x, f_y, f_θ, f_φ).

    With ``damper=False`` the joint damping c(φ̇ − θ̇) is left out; :func:`damper_mode` supplies it
    to the integrator, which treats that stiff term exactly.
    """
    x, xd, y, yd, th, thd, ph, phd = state
    F, alpha, tau = controls
    del x, y
    p1, p2 = k.m1 * k.L1, k.m2 * k.L2
    dx, dy = drag(xd, yd, k)
    fx = F * jnp.cos(th + alpha) + dx + p1 * thd**2 * jnp.cos(th) + p2 * phd**2 * jnp.cos(ph)
    fy = (
        F * jnp.sin(th + alpha)
        + dy
        - (k.m1 + k.m2) * k.g
        + p1 * thd**2 * jnp.sin(th)
        + p2 * phd**2 * jnp.sin(ph)
    )
    deflection = ph - th - jnp.pi - k.betaR
    joint = k.K * deflection + (k.c * (phd - thd) if damper else 0.0)
    fth = tau - p1 * k.g * jnp.cos(th) + joint + F * k.L3 * jnp.sin(alpha)
    fph = -tau - p2 * k.g * jnp.cos(ph) - joint
    return fx, fy, fth, fph


def accelerations(state, controls, k: BodyConstants):
    """q̈ = M⁻¹ f for a component state; returns (ẍ, ÿ, θ̈, φ̈)."""
    th, ph = state[4], state[6]
    return solve_mass(th, ph, *forces(state, controls, k), k)


def damper_mode(th, ph, k: BodyConstants):
    """The joint damper as a rank-one linear map on velocities, and its eigenvalue.

    The damping force is ``−c b bᵀ q̇`` with ``b = (0, 0, −1, 1)`` (so ``bᵀq̇ = φ̇ − θ̇``), hence its
    acceleration is ``A q̇`` with ``A = u bᵀ``, ``u = −c M⁻¹ b``. Being rank one, ``A² = λ A`` with
    ``λ = bᵀu = −c bᵀM⁻¹b``: the only stiff eigenvalue of the model (≈ −6.5×10⁴ s⁻¹ for S1).

    Returns ``(u, λ)`` with ``u`` a tuple of four arrays (components on ẍ, ÿ, θ̈, φ̈).
    """
    zero = jnp.zeros_like(th)
    u = solve_mass(th, ph, zero, zero, zero - k.c * -1.0, zero - k.c * 1.0, k)
    lam = u[3] - u[2]
    return u, lam


def derivative(state, controls, k: BodyConstants):
    """Full right-hand side dy/dt of the first-order system, as a tuple of eight arrays."""
    ax, ay, ath, aph = accelerations(state, controls, k)
    _, xd, _, yd, _, thd, _, phd = state
    return xd, ax, yd, ay, thd, ath, phd, aph
