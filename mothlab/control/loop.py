"""The closed loop: a controller flies the true simulator, 20 ms at a time (SCIENCE.md §6).

Every control period (20 ms, the data's span and about one wing half-stroke):

1. **sense** — the controller sees the state plus sensor noise (Gaussian, ``sensor_noise`` times
   each quantity's span in the network's input scaler, so σ = 0.01 is 1 % of the training range);
2. **desire** — the desired state 20 ms ahead is computed from the sensed state and the target
   (below);
3. **decide** — the controller returns ``(F, α, τ)``: a network (its 10 scaled inputs → 7 outputs,
   unscaled with the experiment's scaler; ``F = √(Fx² + Fy²) ≥ 0``, ``α = atan2(Fy, Fx)``), the
   random-shooting MPC or the oracle inverse (:mod:`mothlab.control.baselines`);
4. **act** — actuator noise is added to the body-frame ``(Fx, Fy, τ)`` (σ times the output
   scaler's spans), then ``F`` and ``τ`` are clipped to the S3 ranges (``α`` is an angle, taken
   mod 2π) and each clip is recorded;
5. **fly** — the true simulator (:func:`mothlab.moth.integrate.step_span`, the compiled step of
   ``simulate``, float32 by default) advances the state 20 ms under those constant controls.

How the desired state 20 ms ahead is chosen (the design, and why)
-----------------------------------------------------------------
The networks were trained on *one* question: which constant controls take this state to that pose
in 20 ms. A pose that no control reaches is off the training manifold, and a network's answer there
is arbitrary, so the loop must ask for poses that are reachable and that, chained, track the
target. We ask for the pose a smooth second-order reference model would reach:

- **Position**: a critically damped approach with feed-forward of the target's own motion,
  ``a* = a_T + ω² (p_T − p) + 2ζω (v_T − v)`` (clipped to ``max_accel``), and the desired
  displacement ``Δp = v·dt + ½ a*·dt²``. On the target with its velocity, this asks for exactly
  the target's next step; away from it, for a bounded, non-overshooting return. ``ω`` (default
  2π·2 Hz) sets how hard it corrects: much faster than 1/dt asks for accelerations the 20 ms
  chunks cannot deliver smoothly.
- **Angles**: the body is underactuated (three controls, four coordinates), so we do not steer
  the angles freely; we ask them to relax towards the upright hover posture ``θ = π/2``,
  ``φ = θ + π`` (a straight body, the model's equilibrium with ``F = (m1+m2)g``, ``α = τ = 0``)
  with the same second-order law at ``attitude_omega``. Because φ̇ − θ̇ relaxes in ~15 µs
  (the damper) and the pose changes little in 20 ms, these requests stay close to what the body
  can do. Angles fed to the network are wrapped into [0, 2π) as in the data; the desired final
  angles are the wrapped ones plus the requested change, as in training.
- The same desired state is given to every controller (network, MPC, oracle), so differences
  between them are differences of control, not of the question asked.

A flight **diverges** when the joint is more than ``diverge_cm`` from the target or the state stops
being finite; from then on its state is frozen (recorded, never NaN) and it is flagged.

Shapes: flights are ``(M, P)`` — M networks (1 for MPC/oracle) × P flights per network (targets ×
noise draws × conditions). Every network flies the same P flights with the same noise draws
(common random numbers: a flight's noise depends on its seed and draw only, never on the network
or its batch-mates), so differences between networks are paired.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import param

from mothlab.data import INPUT_NAMES, OUTPUT_NAMES, MinMaxScaler, SamplingRanges
from mothlab.moth import STATE_NAMES, MothParams
from mothlab.moth.integrate import REFERENCE_SPAN, step_span
from mothlab.moth.params import BodyConstants
from mothlab.progress import check_cancel, report

from .names import CONTROLLERS  # noqa: F401 (re-exported)
from .targets import Hover, Target

#: One control period (s): the span of every training sample.
PERIOD = REFERENCE_SPAN
_R = SamplingRanges()
F_MAX = float(_R.F[1])
TAU_MAX = float(max(abs(_R.tau[0]), abs(_R.tau[1])))
UPRIGHT = (math.pi / 2, 3 * math.pi / 2)  # θ, φ of the straight upright hover posture


class Reference(param.Parameterized):
    """How the desired state 20 ms ahead is made from the sensed state and the target."""

    omega = param.Number(
        2 * math.pi * 2,
        bounds=(0.1, 200.0),
        label="ω position (rad/s)",
        doc="Bandwidth of the critically damped approach to the target.",
    )
    zeta = param.Number(1.0, bounds=(0.1, 5.0), label="ζ", doc="Damping ratio of the approach.")
    max_accel = param.Number(
        5000.0,
        bounds=(10.0, 2e4),
        label="max accel (cm/s²)",
        doc="Largest acceleration asked for (S3's F_max/m is ~16 800).",
    )
    attitude_omega = param.Number(
        20.0,
        bounds=(0.0, 500.0),
        label="ω attitude (rad/s)",
        doc="Bandwidth of the angles' relaxation to the upright posture (0: let the angles coast).",
    )

    def gains(self) -> np.ndarray:
        return np.array([self.omega, self.zeta, self.max_accel, self.attitude_omega], np.float32)


def hover_state(at=(0.0, 0.0)) -> np.ndarray:
    """(8,) the upright hover posture at rest at ``at`` (cm)."""
    return np.array([at[0], 0.0, at[1], 0.0, UPRIGHT[0], 0.0, UPRIGHT[1], 0.0])


# ------------------------------------------------------------------------------ networks
@dataclasses.dataclass(frozen=True)
class Networks:
    """M trained networks ready to fly: effective weights stacked on a leading axis.

    weights[l]: (M, n_l, n_{l+1}) float32; biases[l]: (M, n_{l+1}); ``x_affine = (c, d)`` maps
    physical inputs to scaled ones (``c·x + d``, (10,) each); ``y_affine = (a, b)`` maps scaled
    outputs back (``a·y + b``, (7,)); ``level``, ``network``, ``sparsity``: (M,) labels;
    ``spans_in`` (10,), ``spans_out`` (7,): the scalers' fitted ranges (noise units).
    """

    weights: tuple
    biases: tuple
    activation: str
    x_affine: tuple
    y_affine: tuple
    level: np.ndarray
    network: np.ndarray
    sparsity: np.ndarray
    spans_in: np.ndarray
    spans_out: np.ndarray
    source: str = ""

    @property
    def n(self) -> int:
        return len(self.level)

    def labels(self) -> list[str]:
        return [f"network {n} at {100 * s:.0f} %" for n, s in zip(self.network, self.sparsity)]


def experiment_scalers(exp) -> tuple[MinMaxScaler, MinMaxScaler]:
    """The experiment's input and output scalers, or ValueError when it has none."""
    sc = exp.header.get("scalers")
    if not sc or "x" not in sc or "y" not in sc:
        raise ValueError(
            f"experiment {exp.path} has no scalers (it was trained on in-memory, "
            "already scaled arrays), so its outputs cannot be turned back into "
            "forces; fly a network trained from a dataset store (mothlab train)."
        )
    return MinMaxScaler.from_dict(sc["x"]), MinMaxScaler.from_dict(sc["y"])


def _affine(fn, n):
    """(c, d) such that fn(x) = c·x + d column-wise, from the public transform methods."""
    d = fn(np.zeros((1, n)))[0]
    c = fn(np.ones((1, n)))[0] - d
    return c.astype(np.float32), d.astype(np.float32)


def load_networks(exp, pairs) -> Networks:
    """The networks ``[(level, network), ...]`` of an experiment (or its path), ready to fly.

    Refuses a level that is not done, a network that does not exist, or an experiment without
    scalers, with the allowed range.
    """
    if isinstance(exp, str) or hasattr(exp, "__fspath__"):
        from mothlab.nets import load_experiment

        exp = load_experiment(exp)
    xs, ys = experiment_scalers(exp)
    pairs = [(int(lv), int(n)) for lv, n in pairs]
    if not pairs:
        raise ValueError("no networks to fly: give at least one (level, network) pair.")
    L = len(exp.sparsity_levels)
    for lv, n in pairs:
        if not 0 <= n < exp.n_networks:
            raise ValueError(
                f"network {n} does not exist: experiment {exp.path.name} has "
                f"networks 0 to {exp.n_networks - 1}."
            )
        if not 0 <= lv < exp.levels_done:
            raise ValueError(
                f"level {lv} does not exist or is not done: experiment "
                f"{exp.path.name} has levels 0 to {exp.levels_done - 1} done "
                f"(of {L}; sparsity {', '.join(f'{s:g}' for s in exp.sparsity_levels[: exp.levels_done])})."
            )
    n_layers = exp.n_layers
    ws = [
        np.empty((len(pairs), a, b), np.float32)
        for a, b in zip(exp.layer_sizes[:-1], exp.layer_sizes[1:])
    ]
    bs = [np.empty((len(pairs), b), np.float32) for b in exp.layer_sizes[1:]]
    for lv in sorted({lv for lv, _ in pairs}):
        w, b = exp.weights(lv), exp.biases(lv)
        for i, (lv_i, n) in enumerate(pairs):
            if lv_i == lv:
                for l in range(n_layers):
                    ws[l][i] = w[l][n]
                    bs[l][i] = b[l][n]
    n_in, n_out = exp.layer_sizes[0], exp.layer_sizes[-1]
    if n_in != len(INPUT_NAMES) or n_out != len(OUTPUT_NAMES):
        raise ValueError(
            f"experiment {exp.path.name} has {n_in} inputs and {n_out} outputs; a "
            f"flight controller needs {len(INPUT_NAMES)} and {len(OUTPUT_NAMES)}."
        )
    lv = np.array([p[0] for p in pairs])
    return Networks(
        tuple(ws),
        tuple(bs),
        str(exp.config.activation),
        _affine(xs.transform, n_in),
        _affine(ys.inverse_transform, n_out),
        lv,
        np.array([p[1] for p in pairs]),
        np.asarray(exp.sparsity_levels)[lv],
        (xs.hi - xs.lo).astype(np.float32),
        (ys.hi - ys.lo).astype(np.float32),
        str(exp.path),
    )


def default_spans() -> tuple[np.ndarray, np.ndarray]:
    """Noise units without an experiment: S3 spans of the inputs and outputs (70 cm for the
    final positions, their measured range over S3 flights)."""
    span = {
        "xd0": _R.xd,
        "yd0": _R.yd,
        "phi0": _R.phi,
        "theta0": _R.theta,
        "phid0": _R.phid,
        "thetad0": _R.thetad,
        "phi_f": (-3.5, 9.7),
        "theta_f": (-3.5, 9.7),
    }
    sin = np.array([span[n][1] - span[n][0] if n in span else 70.0 for n in INPUT_NAMES])
    sout = np.array([2 * F_MAX, 2 * F_MAX, 2 * TAU_MAX] + [4000.0, 4000.0, 700.0, 700.0])
    return sin.astype(np.float32), sout.astype(np.float32)


def _state_spans(spans_in) -> np.ndarray:
    """Sensor-noise units for the 8 state components from the input spans (positions: x_f, y_f)."""
    by = dict(zip(INPUT_NAMES, spans_in))
    names = {
        "x": "x_f",
        "xd": "xd0",
        "y": "y_f",
        "yd": "yd0",
        "theta": "theta0",
        "thetad": "thetad0",
        "phi": "phi0",
        "phid": "phid0",
    }
    return np.array([by[names[s]] for s in STATE_NAMES], np.float32)


# ------------------------------------------------------------------------------ flights
@dataclasses.dataclass
class FlightSet:
    """P flights to fly (by every network): per-flight arrays.

    t: (T+1,) s; target_p/v/a: (T+1, 2, P); state0: (8, P); body: BodyConstants of (P,) arrays;
    sensor_noise, actuator_noise: (P,); draw: (P,) int (noise stream); labels: dict of (P,)
    arrays describing each flight (target, draw, noise levels, body).
    """

    t: np.ndarray
    target_p: np.ndarray
    target_v: np.ndarray
    target_a: np.ndarray
    state0: np.ndarray
    body: BodyConstants
    sensor_noise: np.ndarray
    actuator_noise: np.ndarray
    draw: np.ndarray
    labels: dict
    seed: int = 0

    @property
    def n(self) -> int:
        return self.state0.shape[1]


def _check_level(name, v, hi=1.0):
    v = float(v)
    if not math.isfinite(v) or v < 0 or v > hi:
        raise ValueError(
            f"{name} must be in [0, {hi:g}] (a fraction of each quantity's range "
            f"in the training data); got {v!r}."
        )
    return v


def body_constants(scale: float = 1.0, abdomen_mass_factor: float = 1.0) -> BodyConstants:
    """The body at length scale ``s`` with the abdomen ``k`` times as heavy (density × k: its mass
    and moment of inertia scale by k, its shape does not — a moth after feeding)."""
    s = float(scale)
    k = float(abdomen_mass_factor)
    if not math.isfinite(s) or not 0.5 <= s <= 2.0:
        raise ValueError(f"body scale s must be in [0.5, 2] (the authors used 1.3); got {scale!r}.")
    if not math.isfinite(k) or not 0.25 <= k <= 4.0:
        raise ValueError(
            f"abdomen mass factor must be in [0.25, 4] (a fed moth: ~1.5); "
            f"got {abdomen_mass_factor!r}."
        )
    p = MothParams(s=s)
    p.rho_butt = p.rho_butt * k
    return p.constants()


def make_flights(
    targets,
    *,
    duration: float = 1.0,
    draws: int = 1,
    sensor_noise=(0.0,),
    actuator_noise=(0.0,),
    bodies=((1.0, 1.0),),
    seed: int = 0,
    state0=None,
) -> FlightSet:
    """The product targets × bodies × sensor σ × actuator σ × draws, as one :class:`FlightSet`.

    targets: Target objects; bodies: (scale, abdomen_mass_factor) pairs; noise levels in
    fractions of the training ranges; ``state0`` (8,) start (default: upright at rest at each
    target's start).
    """
    duration = float(duration)
    if not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds; got {duration!r}.")
    if duration > 600:
        raise ValueError(f"duration must be at most 600 s; got {duration:g}.")
    n_periods = max(1, int(round(duration / PERIOD)))
    if not isinstance(draws, int | np.integer) or draws < 1:
        raise ValueError(f"draws must be a whole number >= 1; got {draws!r}.")
    targets = [targets] if isinstance(targets, Target) else list(targets)
    sn = [_check_level("sensor noise", v) for v in np.atleast_1d(sensor_noise)]
    an = [_check_level("actuator noise", v) for v in np.atleast_1d(actuator_noise)]
    bodies = [tuple(b) for b in bodies]
    ks = [body_constants(*b) for b in bodies]
    t = np.arange(n_periods + 1) * PERIOD
    rows = [
        (ti, bi, s, a, d)
        for ti in range(len(targets))
        for bi in range(len(bodies))
        for s in sn
        for a in an
        for d in range(draws)
    ]
    sampled = [tg.sample(t) for tg in targets]
    P = len(rows)
    tp = np.empty((len(t), 2, P)), np.empty((len(t), 2, P)), np.empty((len(t), 2, P))
    s0 = np.empty((8, P))
    for j, (ti, *_rest) in enumerate(rows):
        for arr, src in zip(tp, sampled[ti]):
            arr[:, :, j] = src
        s0[:, j] = hover_state(sampled[ti][0][0]) if state0 is None else np.asarray(state0)
    body = BodyConstants(
        *(
            np.array([ks[r[1]][i] for r in rows], np.float32)
            for i in range(len(BodyConstants._fields))
        )
    )
    labels = {
        "target": np.array([targets[r[0]].name for r in rows]),
        "target_index": np.array([r[0] for r in rows]),
        "scale": np.array([bodies[r[1]][0] for r in rows]),
        "abdomen_mass_factor": np.array([bodies[r[1]][1] for r in rows]),
        "sensor_noise": np.array([r[2] for r in rows]),
        "actuator_noise": np.array([r[3] for r in rows]),
        "draw": np.array([r[4] for r in rows]),
    }
    return FlightSet(
        t,
        *tp,
        s0,
        body,
        labels["sensor_noise"].astype(np.float32),
        labels["actuator_noise"].astype(np.float32),
        labels["draw"],
        labels,
        int(seed),
    )


# ------------------------------------------------------------------------------ the loop
def _wrap(a):
    return jnp.mod(a + jnp.pi, 2 * jnp.pi) - jnp.pi


def desired_state(est, pT, vT, aT, gains, dt=PERIOD):
    """The desired state 20 ms ahead (see the module docstring) for component states (M, P).

    Returns a dict of (M, P) arrays: ``dx, dy`` (desired displacement, cm), ``vx, vy`` (desired
    final velocity), ``dth, dph`` (desired angle changes), ``thd, phd`` (desired final angular
    velocities), ``th0w, ph0w`` (current angles wrapped into [0, 2π)).
    """
    x, xd, y, yd, th, thd, ph, phd = est
    omega, zeta, amax, wa = gains[0], gains[1], gains[2], gains[3]
    ax = aT[0] + omega**2 * (pT[0] - x) + 2 * zeta * omega * (vT[0] - xd)
    ay = aT[1] + omega**2 * (pT[1] - y) + 2 * zeta * omega * (vT[1] - yd)
    mag = jnp.sqrt(ax * ax + ay * ay)
    shrink = jnp.minimum(1.0, amax / jnp.maximum(mag, 1e-6))
    ax, ay = ax * shrink, ay * shrink
    ath = wa**2 * _wrap(UPRIGHT[0] - th) - 2 * wa * thd
    aph = wa**2 * _wrap(UPRIGHT[1] - ph) - 2 * wa * phd
    return {
        "dx": xd * dt + 0.5 * ax * dt * dt,
        "dy": yd * dt + 0.5 * ay * dt * dt,
        "vx": xd + ax * dt,
        "vy": yd + ay * dt,
        "dth": thd * dt + 0.5 * ath * dt * dt,
        "dph": phd * dt + 0.5 * aph * dt * dt,
        "thd": thd + ath * dt,
        "phd": phd + aph * dt,
        "th0w": jnp.mod(th, 2 * jnp.pi),
        "ph0w": jnp.mod(ph, 2 * jnp.pi),
    }


def network_inputs(est, des):
    """The 10 physical network inputs, (M, P, 10) in :data:`mothlab.data.INPUT_NAMES` order."""
    _, xd, _, yd, _, thd, _, phd = est
    by = {
        "xd0": xd,
        "yd0": yd,
        "phi0": des["ph0w"],
        "theta0": des["th0w"],
        "phid0": phd,
        "thetad0": thd,
        "x_f": des["dx"],
        "y_f": des["dy"],
        "phi_f": des["ph0w"] + des["dph"],
        "theta_f": des["th0w"] + des["dth"],
    }
    return jnp.stack([by[n] for n in INPUT_NAMES], -1)


_IFX, _IFY, _ITAU = (OUTPUT_NAMES.index(n) for n in ("Fx", "Fy", "tau"))
_ACTIVATIONS = {"arctan": jnp.arctan, "tanh": jnp.tanh}


def network_controls(net, est, des, activation):
    """Body-frame (Fx, Fy, τ) of M networks for (M, P) flights."""
    ws, bs, (xc, xd_), (ya, yb) = net
    h = network_inputs(est, des) * xc + xd_
    act = _ACTIVATIONS[activation]
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = jnp.einsum("mpi,mio->mpo", h, w) + b[:, None, :]
        if i < len(ws) - 1:
            h = act(h)
    y = h * ya + yb
    return y[..., _IFX], y[..., _IFY], y[..., _ITAU]


def _bcast_body(k, shape):
    return BodyConstants(*(jnp.broadcast_to(jnp.asarray(c), shape) for c in k))


@partial(jax.jit, static_argnames=("kind", "activation", "mpc_samples", "oracle_iters"))
def _chunk(
    carry,
    xs,
    net,
    k,
    gains,
    sens,
    act,
    spans,
    keys,
    diverge_cm,
    *,
    kind,
    activation,
    mpc_samples,
    oracle_iters,
):
    """Fly a chunk of periods. carry: (state (8,M,P), prev_u (3,M,P), alive (M,P)).
    xs: (period index (C,), target p/v/a now (C,2,P), target p next (C,2,P))."""
    from .baselines import mpc_controls, oracle_controls

    state_spans, out_spans = spans
    M, P = carry[2].shape

    def period(carry, x):
        state, prev_u, alive = carry
        i, pT, vT, aT, pN = x
        kk = jax.vmap(lambda kd: jax.random.split(jax.random.fold_in(kd, i), 2))(keys)
        eps_s = jax.vmap(lambda kd: jax.random.normal(kd, (8,)))(kk[:, 0]).T  # (8, P)
        eps_a = jax.vmap(lambda kd: jax.random.normal(kd, (3,)))(kk[:, 1]).T  # (3, P)
        est = tuple(state[j] + sens * state_spans[j] * eps_s[j] for j in range(8))
        des = desired_state(est, pT, vT, aT, gains)
        if kind == "net":
            fx, fy, tau = network_controls(net, est, des, activation)
        elif kind == "mpc":
            fx, fy, tau = mpc_controls(
                est, des, prev_u, k, jax.random.fold_in(keys[0], i), mpc_samples
            )
        else:
            fx, fy, tau = oracle_controls(est, des, prev_u, k, oracle_iters)
        fx = fx + act * out_spans[_IFX] * eps_a[0]
        fy = fy + act * out_spans[_IFY] * eps_a[1]
        tau = tau + act * out_spans[_ITAU] * eps_a[2]
        F = jnp.sqrt(fx * fx + fy * fy)
        alpha = jnp.mod(jnp.arctan2(fy, fx), 2 * jnp.pi)
        clip_f = F > F_MAX
        clip_t = jnp.abs(tau) > TAU_MAX
        F = jnp.where(jnp.isfinite(F), jnp.minimum(F, F_MAX), 0.0)
        alpha = jnp.where(jnp.isfinite(alpha), alpha, 0.0)
        tau = jnp.where(jnp.isfinite(tau), jnp.clip(tau, -TAU_MAX, TAU_MAX), 0.0)
        u = jnp.stack([F, alpha, tau]).astype(state.dtype)
        new = step_span(state, u, k)
        err = jnp.sqrt((new[0] - pN[0]) ** 2 + (new[2] - pN[1]) ** 2)
        ok = alive & jnp.all(jnp.isfinite(new), axis=0) & (err <= diverge_cm)
        new = jnp.where(ok[None], new, state)
        u_rec = jnp.where(alive[None], u, 0.0)
        clipped = jnp.stack([clip_f, jnp.zeros_like(clip_f), clip_t]) & alive[None]
        err_rec = jnp.where(ok, err, jnp.sqrt((state[0] - pN[0]) ** 2 + (state[2] - pN[1]) ** 2))
        return (new, jnp.where(alive[None], u, prev_u), ok), (new, u_rec, clipped, err_rec, ok)

    return jax.lax.scan(period, carry, xs)


@dataclasses.dataclass
class FlightResult:
    """Recorded closed-loop flights of M controllers × P flights.

    t: (T+1,) s; state: (M, P, T+1, 8); controls: (M, P, T, 3) applied ``[F, α, τ]`` (0 after a
    divergence); target: (P, T+1, 2) cm; error: (M, P, T+1) cm, joint to target;
    clipped: (M, P, T, 3) bool (F, α never, τ); diverged: (M, P) bool; diverged_at: (M, P) s
    (inf when it never did); controller: "net" | "mpc" | "oracle"; networks: the
    :class:`Networks` flown (None for baselines); flights: the :class:`FlightSet`;
    wall_s: seconds spent flying.
    """

    t: np.ndarray
    state: np.ndarray
    controls: np.ndarray
    target: np.ndarray
    error: np.ndarray
    clipped: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    controller: str
    networks: Networks | None
    flights: FlightSet
    wall_s: float

    def rms_error(self) -> np.ndarray:
        """(M, P) root-mean-square joint-to-target distance over the flight's periods (cm)."""
        return np.sqrt(np.mean(self.error[..., 1:] ** 2, axis=-1))

    def max_error(self) -> np.ndarray:
        return self.error[..., 1:].max(axis=-1)

    def clipped_fraction(self) -> np.ndarray:
        """(M, P) fraction of control periods in which F or τ had to be clipped."""
        return self.clipped.any(axis=-1).mean(axis=-1)

    def summary(self, m: int = 0, p: int = 0) -> dict:
        """Plain-JSON summary of one flight."""
        out = {
            "controller": self.controller,
            "rms_error_cm": float(self.rms_error()[m, p]),
            "max_error_cm": float(self.max_error()[m, p]),
            "diverged": bool(self.diverged[m, p]),
            "diverged_at_s": (None if not self.diverged[m, p] else float(self.diverged_at[m, p])),
            "clipped_fraction": float(self.clipped_fraction()[m, p]),
            "duration_s": float(self.t[-1]),
            "network": None,
            "level": None,
            "sparsity": None,
        }
        if self.networks is not None:
            out.update(
                network=int(self.networks.network[m]),
                level=int(self.networks.level[m]),
                sparsity=float(self.networks.sparsity[m]),
            )
        for key, v in self.flights.labels.items():
            out[key] = v[p].item()
        return out

    def table(self, m: int = 0, p: int = 0) -> dict[str, np.ndarray]:
        """Columns of one flight for a CSV: time, state, target, error, controls, clips."""
        cols = {"t_s": self.t}
        for j, n in enumerate(STATE_NAMES):
            cols[n] = self.state[m, p, :, j]
        cols["target_x"], cols["target_y"] = self.target[p, :, 0], self.target[p, :, 1]
        cols["error_cm"] = self.error[m, p]
        pad = np.full(1, np.nan)
        for j, n in enumerate(("F", "alpha", "tau")):  # control applied from t to t + 20 ms
            cols[n] = np.concatenate([self.controls[m, p, :, j], pad])
        cols["clipped"] = np.concatenate([self.clipped[m, p].any(-1).astype(float), pad])
        return cols


def fly(
    controller,
    flights: FlightSet,
    *,
    reference: Reference | None = None,
    diverge_cm: float = 20.0,
    mpc_samples: int = 512,
    oracle_iterations: int = 6,
    spans=None,
    chunk_periods: int = 10,
    progress=None,
    cancel=None,
) -> FlightResult:
    """Fly every flight of ``flights`` with ``controller`` in closed loop, all at once.

    controller: a :class:`Networks` (every network flies every flight), ``"mpc"`` or
    ``"oracle"``. ``spans``: (input spans (10,), output spans (7,)) that define the noise units
    (default: the networks' scalers, else :func:`default_spans`; pass the experiment's for
    baselines so their noise matches). Emits :class:`~mothlab.progress.Progress` events and
    raises :class:`~mothlab.progress.Cancelled` between chunks of ``chunk_periods`` periods.
    """
    ref = reference or Reference()
    if isinstance(controller, Networks):
        kind, net = "net", controller
        M = controller.n
        if spans is None:
            spans = (controller.spans_in, controller.spans_out)
        net_arrays = (
            tuple(jnp.asarray(w) for w in net.weights),
            tuple(jnp.asarray(b) for b in net.biases),
            tuple(jnp.asarray(a) for a in net.x_affine),
            tuple(jnp.asarray(a) for a in net.y_affine),
        )
        activation = net.activation
    elif controller in ("mpc", "oracle"):
        kind, net, M, net_arrays, activation = controller, None, 1, None, "arctan"
    else:
        raise ValueError(
            f"controller must be trained Networks, 'mpc' or 'oracle'; got {controller!r}."
        )
    if not (isinstance(mpc_samples, int | np.integer) and 8 <= mpc_samples <= 1 << 16):
        raise ValueError(f"mpc_samples must be a whole number in [8, 65536]; got {mpc_samples!r}.")
    spans_in, spans_out = spans if spans is not None else default_spans()
    P = flights.n
    # pad networks and flights to powers of two: few compiled shapes across calls (a compile of
    # the loop costs tens of seconds on a small CPU, a period of 1000 flights milliseconds)
    Mb, Pb = _bucket(M), _bucket(P)
    if net_arrays is not None and Mb > M:

        def grow(a):
            return jnp.concatenate([a, jnp.repeat(a[-1:], Mb - M, 0)])

        ws, bs, xa, ya = net_arrays
        net_arrays = (tuple(map(grow, ws)), tuple(map(grow, bs)), xa, ya)
    flights_p = _pad_flights(flights, Pb)
    T = len(flights.t) - 1
    C = max(1, min(int(chunk_periods), T))
    n_chunks = -(-T // C)
    Tp = n_chunks * C

    # pad the schedule to whole chunks (one compiled shape); the extra periods are discarded
    def pad(a):
        return np.concatenate([a, np.repeat(a[-1:], Tp + 1 - len(a), axis=0)])

    fp = flights_p
    tp, tv, ta = (pad(a) for a in (fp.target_p, fp.target_v, fp.target_a))
    f32 = np.float32
    state = jnp.broadcast_to(jnp.asarray(fp.state0, f32)[:, None], (8, Mb, Pb))
    if all(np.all(np.asarray(c) == np.asarray(c).flat[0]) for c in fp.body):
        # one body for every flight: scalars, as simulate passes them (arrays of constants
        # cost ~4x in the integrator: every derived constant is recomputed per flight and step)
        k = BodyConstants(*(jnp.asarray(np.asarray(c, f32).flat[0]) for c in fp.body))
    else:
        k = _bcast_body(BodyConstants(*(np.asarray(c, f32) for c in fp.body)), (Mb, Pb))
    hover = (k.m1 + k.m2) * k.g * jnp.ones((Mb, Pb), f32)
    prev_u = jnp.stack([hover, jnp.zeros((Mb, Pb)), jnp.zeros((Mb, Pb))]).astype(f32)
    carry = (state, prev_u, jnp.ones((Mb, Pb), bool))
    base = jax.random.key(int(flights.seed))
    keys = jax.vmap(lambda d: jax.random.fold_in(base, d))(jnp.asarray(fp.draw, jnp.uint32))
    spans_j = (jnp.asarray(_state_spans(spans_in)), jnp.asarray(spans_out, f32))
    args = dict(
        kind=kind,
        activation=activation,
        mpc_samples=int(mpc_samples),
        oracle_iters=int(oracle_iterations),
    )
    outs = []
    t0 = time.perf_counter()
    report(progress, 0.0, f"flying {M}×{P} flights ({kind}), {T} periods", done=0, total=T)
    for c in range(n_chunks):
        check_cancel(cancel)
        sl = slice(c * C, (c + 1) * C)
        xs = (
            jnp.arange(c * C, (c + 1) * C, dtype=jnp.uint32),
            jnp.asarray(tp[sl], f32),
            jnp.asarray(tv[sl], f32),
            jnp.asarray(ta[sl], f32),
            jnp.asarray(tp[c * C + 1 : (c + 1) * C + 1], f32),
        )
        carry, rec = _chunk(
            carry,
            xs,
            net_arrays,
            k,
            jnp.asarray(ref.gains()),
            jnp.asarray(fp.sensor_noise, f32),
            jnp.asarray(fp.actuator_noise, f32),
            spans_j,
            keys,
            jnp.float32(diverge_cm),
            **args,
        )
        outs.append(jax.tree.map(lambda a: np.asarray(a)[..., :M, :P], rec))
        done = min((c + 1) * C, T)
        report(
            progress,
            done / T,
            f"{kind}: {done}/{T} periods flown ({M * P} flights)",
            done=done,
            total=T,
        )
    wall = time.perf_counter() - t0
    states, us, clips, errs, oks = (np.concatenate(parts)[:T] for parts in zip(*outs))
    to_mpt = (2, 3, 0, 1)  # (T, n, M, P) -> (M, P, T, n)
    s0 = np.broadcast_to(np.asarray(flights.state0, f32).T[None], (M, P, 8))
    state_all = np.concatenate([s0[:, :, None], states.transpose(to_mpt)], axis=2)
    p0 = flights.target_p[0]
    e0 = np.hypot(s0[..., 0] - p0[0][None], s0[..., 2] - p0[1][None])
    error = np.concatenate([e0[..., None], errs.transpose(1, 2, 0)], axis=-1)
    alive = oks.transpose(1, 2, 0)  # (M, P, T): still flying after period i
    diverged = ~alive[..., -1]
    first_bad = np.argmax(~alive, axis=-1)
    diverged_at = np.where(diverged, flights.t[1:][first_bad], np.inf)
    return FlightResult(
        flights.t,
        state_all,
        us.transpose(to_mpt),
        np.moveaxis(flights.target_p, 2, 0),
        error,
        clips.transpose(to_mpt),
        diverged,
        diverged_at,
        kind,
        net,
        flights,
        wall,
    )


def _bucket(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def _pad_flights(f: FlightSet, n: int) -> FlightSet:
    """``f`` with its last flight repeated up to ``n`` flights (results of the copies dropped)."""
    extra = n - f.n
    if extra <= 0:
        return f

    def rep(a, axis=-1):
        a = np.asarray(a)
        last = np.take(a, [-1], axis=axis)
        return np.concatenate([a, np.repeat(last, extra, axis=axis)], axis=axis)

    return dataclasses.replace(
        f,
        target_p=rep(f.target_p),
        target_v=rep(f.target_v),
        target_a=rep(f.target_a),
        state0=rep(f.state0),
        body=BodyConstants(*(rep(c) for c in f.body)),
        sensor_noise=rep(f.sensor_noise),
        actuator_noise=rep(f.actuator_noise),
        draw=rep(f.draw),
        labels={k: rep(v) for k, v in f.labels.items()},
    )


def fly_one(
    controller,
    target: Target | None = None,
    *,
    duration: float = 1.0,
    sensor_noise: float = 0.0,
    actuator_noise: float = 0.0,
    scale: float = 1.0,
    abdomen_mass_factor: float = 1.0,
    seed: int = 0,
    **kw,
) -> FlightResult:
    """One flight (per network given): a convenience over :func:`make_flights` and :func:`fly`."""
    flights = make_flights(
        [target or Hover()],
        duration=duration,
        sensor_noise=[sensor_noise],
        actuator_noise=[actuator_noise],
        bodies=[(scale, abdomen_mass_factor)],
        seed=seed,
    )
    return fly(controller, flights, **kw)
