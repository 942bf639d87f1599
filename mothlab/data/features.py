"""The network's 10 inputs and 7 outputs (the inverse problem of SCIENCE.md §2).

Inputs: the initial velocities and angles and the final pose; outputs: the controls that flew
that flight (the wing force split into body-frame components ``Fx = F cos α``, ``Fy = F sin α``,
and the torque ``τ``) plus the final velocities, so 20 ms solutions can be chained.

>>> import numpy as np
>>> s0 = np.arange(8.0)[None]; sf = 10 + np.arange(8.0)[None]; u = np.array([[2.0, 0.0, 5.0]])
>>> X, Y = features(s0, u, sf)
>>> X.tolist()
[[1.0, 3.0, 6.0, 4.0, 7.0, 5.0, 10.0, 12.0, 16.0, 14.0]]
>>> Y.tolist()
[[2.0, 0.0, 5.0, 11.0, 13.0, 17.0, 15.0]]
"""

from __future__ import annotations

import numpy as np

INPUT_NAMES = ("xd0", "yd0", "phi0", "theta0", "phid0", "thetad0", "x_f", "y_f", "phi_f", "theta_f")
INPUT_LABELS = ("ẋ₀", "ẏ₀", "φ₀", "θ₀", "φ̇₀", "θ̇₀", "x_f", "y_f", "φ_f", "θ_f")
INPUT_UNITS = ("cm/s", "cm/s", "rad", "rad", "rad/s", "rad/s", "cm", "cm", "rad", "rad")
OUTPUT_NAMES = ("Fx", "Fy", "tau", "xd_f", "yd_f", "phid_f", "thetad_f")
OUTPUT_LABELS = ("F_x", "F_y", "τ", "ẋ_f", "ẏ_f", "φ̇_f", "θ̇_f")
OUTPUT_UNITS = ("dyn", "dyn", "dyn·cm", "cm/s", "cm/s", "rad/s", "rad/s")

# columns of the state [x, ẋ, y, ẏ, θ, θ̇, φ, φ̇] that make up the inputs and outputs
_X_FROM_STATE0 = [1, 3, 6, 4, 7, 5]  # ẋ0, ẏ0, φ0, θ0, φ̇0, θ̇0
_X_FROM_STATEF = [0, 2, 6, 4]  # x_f, y_f, φ_f, θ_f
_Y_FROM_STATEF = [1, 3, 7, 5]  # ẋ_f, ẏ_f, φ̇_f, θ̇_f


def check_array(name: str, a, shape: tuple) -> np.ndarray:
    """``a`` as a finite float array of the given shape (``None`` in shape = any length).

    Raises ValueError naming the array, the expected and actual shapes, or the first NaN/inf.
    """
    try:
        arr = np.asarray(a, dtype=np.float64 if np.asarray(a).dtype != np.float32 else np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array; could not convert it: {err}") from None
    want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
    if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape)):
        raise ValueError(f"{name} must have shape {want}; got shape {arr.shape}.")
    # imported here: mothlab.moth.integrate imports JAX, and the names and scaler of this module
    # are used where JAX is not (the app's first page)
    from mothlab.moth.integrate import require_finite

    return require_finite(name, arr)


def features(state0, controls, state_f) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs and outputs of ``n`` flights.

    Parameters
    ----------
    state0 : (n, 8) initial states ``[x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]`` (cm, cm/s, rad, rad/s)
    controls : (n, 3) ``[F, α, τ]`` (dyn, rad, dyn·cm)
    state_f : (n, 8) final states (e.g. ``simulate(...)[:, -1]``)

    Returns
    -------
    X : float32 (n, 10), columns :data:`INPUT_NAMES`
    Y : float32 (n, 7), columns :data:`OUTPUT_NAMES`; ``Fx = F cos α``, ``Fy = F sin α``
    """
    s0 = check_array("state0", state0, (None, 8))
    u = check_array("controls", controls, (None, 3))
    sf = check_array("state_f", state_f, (None, 8))
    if not len(s0) == len(u) == len(sf):
        raise ValueError(
            f"state0, controls and state_f must have the same number of rows; got "
            f"{len(s0)}, {len(u)} and {len(sf)}."
        )
    X = np.concatenate([s0[:, _X_FROM_STATE0], sf[:, _X_FROM_STATEF]], axis=1)
    # the force components in float64 before rounding: α near 2π loses digits in float32
    F = u[:, 0].astype(np.float64)
    alpha = u[:, 1].astype(np.float64)
    Y = np.concatenate(
        [np.stack([F * np.cos(alpha), F * np.sin(alpha), u[:, 2]], axis=1), sf[:, _Y_FROM_STATEF]],
        axis=1,
    )
    return X.astype(np.float32), Y.astype(np.float32)
