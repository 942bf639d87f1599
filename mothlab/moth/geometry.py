"""Shapes for drawing the moth to scale (SCIENCE.md §1, "Drawing the moth").

Plain NumPy, for any number of frames: pass one state ``(8,)`` or a trajectory ``(T, 8)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .params import MothParams


class BodyShapes(NamedTuple):
    """Everything needed to draw the moth, in cm; leading axis T (frames) where the state had one.

    head, abdomen: (T, n_points, 2) closed ellipse outlines.
    joint: (T, 2). com_head, com_abdomen, com: (T, 2) centres of mass (com: of the whole body).
    thrust_start, thrust_end: (T, 2) the wing-force arrow, length ``thrust_scale · F``.
    torque: (T,) the abdominal torque τ (dyn·cm) acting at the joint (+ is counter-clockwise on
    the head-thorax).
    """

    head: np.ndarray
    abdomen: np.ndarray
    joint: np.ndarray
    com_head: np.ndarray
    com_abdomen: np.ndarray
    com: np.ndarray
    thrust_start: np.ndarray
    thrust_end: np.ndarray
    torque: np.ndarray


def _ellipse(center, angle, a, b, n):
    t = np.linspace(0, 2 * np.pi, n)
    ca, sa = np.cos(angle)[:, None], np.sin(angle)[:, None]
    ex, ey = a * np.cos(t)[None], b * np.sin(t)[None]
    return np.stack([center[:, :1] + ex * ca - ey * sa, center[:, 1:] + ex * sa + ey * ca], -1)


def body_shapes(
    state,
    controls,
    params: MothParams | None = None,
    *,
    n_points: int = 64,
    thrust_scale: float | None = None,
) -> BodyShapes:
    """Outlines, centres of mass and force markers of the moth.

    Parameters
    ----------
    state : (8,) or (T, 8) ``[x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]``.
    controls : (3,) ``[F, α, τ]`` (constant over the flight) or (T, 3).
    thrust_scale : cm per dyn of the thrust arrow; default: a hover force (m1+m2)·g is drawn
        as long as the head-thorax (2·ahead).

    >>> s = body_shapes([0, 0, 0, 0, np.pi / 2, 0, 3 * np.pi / 2, 0], [2586.0, 0.0, 0.0])
    >>> np.round(s.com_head[0], 6).tolist()  # head-thorax centre straight above the joint
    [0.0, 0.9]
    """
    p = params or MothParams()
    state = np.atleast_2d(np.asarray(state, dtype=float))
    controls = np.broadcast_to(np.asarray(controls, dtype=float), (len(state), 3))
    if state.shape[-1] != 8:
        raise ValueError(f"state must have shape (8,) or (T, 8); got {state.shape}.")
    x, y, th, ph = state[:, 0], state[:, 2], state[:, 4], state[:, 6]
    F, alpha, tau = controls.T
    L1, L2, L3 = p.scaled("L1"), p.scaled("L2"), p.scaled("L3")
    joint = np.stack([x, y], -1)
    uh = np.stack([np.cos(th), np.sin(th)], -1)
    ua = np.stack([np.cos(ph), np.sin(ph)], -1)
    com_head = joint + L1 * uh
    com_abdomen = joint + L2 * ua
    com = (p.m1 * com_head + p.m2 * com_abdomen) / (p.m1 + p.m2)
    if thrust_scale is None:
        thrust_scale = 2 * p.scaled("ahead") / p.hover_force
    thrust_start = joint + L3 * uh
    direction = np.stack([np.cos(th + alpha), np.sin(th + alpha)], -1)
    thrust_end = thrust_start + (thrust_scale * F)[:, None] * direction
    head = _ellipse(com_head, th, p.scaled("ahead"), p.scaled("bhead"), n_points)
    abdomen = _ellipse(com_abdomen, ph, p.scaled("abutt"), p.scaled("bbutt"), n_points)
    return BodyShapes(
        head, abdomen, joint, com_head, com_abdomen, com, thrust_start, thrust_end, tau.copy()
    )
