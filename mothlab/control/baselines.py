"""Two controllers that know the model: random-shooting MPC and the oracle inverse.

Both are pure JAX functions of component states ``(M, P)`` called inside the compiled loop of
:mod:`mothlab.control.loop`, and both are asked exactly what the networks are asked (the same
desired state 20 ms ahead). They return body-frame ``(Fx, Fy, τ)`` like a network's outputs; the
loop turns them into ``(F, α, τ)``, adds actuator noise and clips.

**Random-shooting MPC** (Bustamante et al. 2022): each period, ``K`` random control sets are
flown for 20 ms in parallel through the true simulator from the sensed state, each scored by a
quadratic cost on the terminal state against the desired state, and the cheapest is applied for
one period (receding horizon: the next period plans again from the new state). Our draws: the
last period's choice and the upright hover controls are always candidates; of the rest, a quarter
is uniform over S3 and the others are Gaussian around the last choice at two widths (fine: 5 % of
the hover force, 0.05 rad, 2·10³ dyn·cm; coarse: 50 %, 0.5 rad, 2·10⁴ dyn·cm). The terminal cost
is ``|Δp|² + dt²|Δv|² + ℓ²(Δθ² + Δφ²) + (ℓ dt)²(Δθ̇² + Δφ̇²)`` with ``ℓ`` = :data:`ANGLE_LENGTH`
(cm per rad; so an angle error costs like the position error of a point ℓ from the joint) and
``dt`` = 20 ms (a velocity error costs like the position error it makes in one period).

**Oracle inverse**: the controls that take the sensed state to the desired pose in 20 ms, solved
through the simulator itself — Levenberg–Marquardt on the body-frame ``(Fx, Fy, τ)`` with
Jacobians by forward differences flown through :func:`~mothlab.moth.integrate.step_span`,
warm-started from the last period's controls. Four equations (x, y, θ, φ), three unknowns: the
least-squares answer weighs angles by :data:`ANGLE_LENGTH` like the MPC. This is the inverse the
networks approximate, made exact, so a good oracle flight shows that the loop (desired states,
unscaling, clipping, chaining) is right and a bad network flight is the network's fault.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mothlab.moth.integrate import step_span
from mothlab.moth.params import BodyConstants

#: cm per rad: the weight of angle errors relative to position errors (MPC cost and oracle).
ANGLE_LENGTH = 1.0
#: body-frame control units the oracle solves in (dyn, dyn, dyn·cm); F's unit is the hover force
TORQUE_UNIT = 1e4
DT = 0.02
_TWO_PI = 2 * jnp.pi


def _expand(k: BodyConstants) -> BodyConstants:
    return BodyConstants(*(jnp.asarray(c)[..., None] for c in k))


def _goal(est, des):
    """Desired final (x, y, θ, φ, ẋ, ẏ, θ̇, φ̇) in the unwrapped frame of the sensed state."""
    return (
        est[0] + des["dx"],
        est[2] + des["dy"],
        est[4] + des["dth"],
        est[6] + des["dph"],
        des["vx"],
        des["vy"],
        des["thd"],
        des["phd"],
    )


def terminal_cost(final, goal):
    """Quadratic terminal cost of final states (8, ..., K) against the goal (each (...))."""
    g = [a[..., None] for a in goal]
    L = ANGLE_LENGTH
    return (
        (final[0] - g[0]) ** 2
        + (final[2] - g[1]) ** 2
        + DT * DT * ((final[1] - g[4]) ** 2 + (final[3] - g[5]) ** 2)
        + L * L * ((final[4] - g[2]) ** 2 + (final[6] - g[3]) ** 2)
        + (L * DT) ** 2 * ((final[5] - g[6]) ** 2 + (final[7] - g[7]) ** 2)
    )


def mpc_controls(
    est,
    des,
    prev_u,
    k: BodyConstants,
    key,
    n_samples: int,
    f_max: float = 44300.0,
    tau_max: float = 1e5,
):
    """Random-shooting MPC for (M, P) flights: body-frame (Fx, Fy, τ) of the best of
    ``n_samples`` candidates."""
    shape = est[0].shape
    hover = (k.m1 + k.m2) * k.g * jnp.ones(shape)
    n_uni = n_samples // 4
    n_coarse = (n_samples - n_uni - 2) // 2
    n_fine = n_samples - n_uni - n_coarse - 2
    k1, k2, k3 = jax.random.split(key, 3)
    e = lambda a: a[..., None]  # noqa: E731
    Fp, ap, tp = prev_u
    nf = jax.random.normal(k1, (3, *shape, n_fine))
    nc = jax.random.normal(k2, (3, *shape, n_coarse))
    uu = jax.random.uniform(k3, (3, *shape, n_uni))
    F = jnp.concatenate(
        [
            e(Fp),
            e(hover),
            e(Fp) + 0.05 * e(hover) * nf[0],
            e(Fp) + 0.5 * e(hover) * nc[0],
            f_max * uu[0],
        ],
        -1,
    )
    a = jnp.concatenate(
        [e(ap), e(jnp.pi / 2 - est[4]), e(ap) + 0.05 * nf[1], e(ap) + 0.5 * nc[1], _TWO_PI * uu[1]],
        -1,
    )
    t = jnp.concatenate(
        [
            e(tp),
            e(jnp.zeros(shape)),
            e(tp) + 2e3 * nf[2],
            e(tp) + 2e4 * nc[2],
            tau_max * (2 * uu[2] - 1),
        ],
        -1,
    )
    F = jnp.clip(F, 0.0, f_max)
    t = jnp.clip(t, -tau_max, tau_max)
    s0 = jnp.stack([jnp.broadcast_to(e(c), (*shape, n_samples)) for c in est])
    final = step_span(s0, jnp.stack([F, a, t]).astype(s0.dtype), _expand(k))
    cost = terminal_cost(final, _goal(est, des))
    cost = jnp.where(jnp.isfinite(cost), cost, jnp.inf)
    best = jnp.argmin(cost, axis=-1)[..., None]
    Fb, ab, tb = (jnp.take_along_axis(c, best, -1)[..., 0] for c in (F, a, t))
    return Fb * jnp.cos(ab), Fb * jnp.sin(ab), tb


def oracle_controls(est, des, prev_u, k: BodyConstants, iterations: int = 6, fd_step: float = 1e-2):
    """Levenberg–Marquardt solve of the forward model for the desired pose, for (M, P) flights.

    The Jacobian comes from forward differences (step ``fd_step`` in units of the hover force and
    :data:`TORQUE_UNIT`) flown in the same batched simulator call as the residual: one copy of the
    integrator in the compiled program (a jvp would add a second and doubles compile time), and
    the map is so nearly linear over 20 ms (the controls enter the forces linearly) that the
    iteration converges to the same controls.
    """
    shape = est[0].shape
    hover = (k.m1 + k.m2) * k.g * jnp.ones(shape)
    s0 = jnp.stack([jnp.broadcast_to(c[..., None], (*shape, 4)) for c in est])
    kx = _expand(k)
    goal = [g[..., None] for g in _goal(est, des)]
    Fp, ap, tp = prev_u
    z0 = jnp.stack([Fp * jnp.cos(ap) / hover, Fp * jnp.sin(ap) / hover, tp / TORQUE_UNIT])
    L = ANGLE_LENGTH
    probe = fd_step * jnp.concatenate([jnp.zeros((3, 1)), jnp.eye(3)], 1)  # (3, 4)

    def iteration(_, z):
        zz = z[..., None] + probe[:, None, None, :]  # (3, M, P, 4): base + one probe per control
        fx, fy, tau = zz[0] * hover[..., None], zz[1] * hover[..., None], zz[2] * TORQUE_UNIT
        F = jnp.sqrt(fx * fx + fy * fy)
        fin = step_span(s0, jnp.stack([F, jnp.arctan2(fy, fx), tau]).astype(s0.dtype), kx)
        r = jnp.stack(
            [fin[0] - goal[0], fin[2] - goal[1], L * (fin[4] - goal[2]), L * (fin[6] - goal[3])]
        )  # (4, M, P, 4)
        J = (r[..., 1:] - r[..., :1]) / fd_step  # (4, M, P, 3)
        r0 = r[..., 0]
        JTJ = jnp.einsum("rmpi,rmpj->mpij", J, J)
        JTr = jnp.einsum("rmpi,rmp->mpi", J, r0)
        damp = 1e-3 * jnp.trace(JTJ, axis1=-2, axis2=-1)[..., None, None] + 1e-12
        step = jnp.linalg.solve(JTJ + damp * jnp.eye(3), -JTr[..., None])[..., 0]
        step = jnp.where(jnp.isfinite(step), step, 0.0)
        return z + jnp.moveaxis(step, -1, 0)

    z = jax.lax.fori_loop(0, iterations, iteration, z0)
    return z[0] * hover, z[1] * hover, z[2] * TORQUE_UNIT
