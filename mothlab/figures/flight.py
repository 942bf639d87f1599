"""Matplotlib picture of a 20 ms flight: the body drawn to scale at several instants."""

from __future__ import annotations

import numpy as np

from mothlab.moth import MothParams, simulate
from mothlab.moth.geometry import body_shapes


def plot_flight(
    state0,
    controls,
    params: MothParams | None = None,
    *,
    t_end: float = 0.02,
    n_frames: int = 6,
    ax=None,
    title: str | None = None,
    thrust_scale: float = 1e-4,
):
    """Simulate one flight and draw it: ellipses at ``n_frames`` instants (later = darker),
    the centre-of-mass trails of both bodies, and the wing-force arrow at each instant
    (``thrust_scale`` cm per dyn: 1 cm per 10⁴ dyn by default).

    state0 (8,), controls (3,) as for :func:`mothlab.moth.simulate`. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    p = params or MothParams()
    t = np.linspace(0, t_end, 101)
    traj = simulate(state0, controls, p, t=t, precise=True)
    shapes = body_shapes(traj, controls, p, thrust_scale=thrust_scale)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    frames = np.linspace(0, len(t) - 1, n_frames).astype(int)
    for rank, i in enumerate(frames):
        shade = 0.25 + 0.75 * rank / max(1, n_frames - 1)
        ax.add_patch(
            Polygon(
                shapes.head[i],
                closed=True,
                fc=(0.55, 0.35, 0.2, 0.35 * shade),
                ec=(0.35, 0.2, 0.1, shade),
                lw=1,
            )
        )
        ax.add_patch(
            Polygon(
                shapes.abdomen[i],
                closed=True,
                fc=(0.75, 0.6, 0.35, 0.35 * shade),
                ec=(0.45, 0.35, 0.15, shade),
                lw=1,
            )
        )
        start, end = shapes.thrust_start[i], shapes.thrust_end[i]
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops=dict(arrowstyle="-|>", color=(0.1, 0.3, 0.8, shade), lw=1.5),
        )
        ax.plot(*shapes.joint[i], "o", ms=3, color=(0, 0, 0, shade))
        ax.update_datalim([start, end])  # annotations do not count for autoscaling
    ax.plot(*shapes.com_head.T, "-", color="#8c5a32", lw=1, label="head-thorax centre of mass")
    ax.plot(*shapes.com_abdomen.T, "-", color="#c49a4a", lw=1, label="abdomen centre of mass")
    ax.plot(*shapes.com.T, "--", color="k", lw=1, label="whole-body centre of mass")
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    F, alpha, tau = np.asarray(controls, float)
    ax.set_title(
        title
        or f"{t_end * 1e3:g} ms flight: F = {F:,.0f} dyn, α = {alpha:.2f} rad, "
        f"τ = {tau:,.0f} dyn·cm"
    )
    ax.legend(loc="best", fontsize=8, frameon=False)
    return ax
