"""Matplotlib figures of closed-loop flights and studies (the CLI's and the README's).

Colours are the Okabe–Ito palette (colour-blind safe), the same hex values as the app's.
"""

from __future__ import annotations

import numpy as np

from .loop import F_MAX, TAU_MAX

BLUE, ORANGE, GREEN, RED, PURPLE, GREY, SKY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#999999",
    "#56B4E9",
)
GROUP_COLOURS = {
    "dense": BLUE,
    "optimal": GREEN,
    "over-pruned": RED,
    "networks": BLUE,
    "mpc": ORANGE,
    "oracle": "black",
}


def _percentiles(a):
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return (
                np.nanpercentile(a, 25, axis=-1),
                np.nanmedian(a, axis=-1),
                np.nanpercentile(a, 75, axis=-1),
            )


def study_figure(result):
    """Two panels: RMS tracking error (log) per network, median and quartiles per group, MPC and
    oracle medians beside; below, the fraction of flights that diverged."""
    import matplotlib.pyplot as plt

    fig, (ax, axd) = plt.subplots(
        2, 1, figsize=(8, 6.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    sparsity = result.name == "sparsity"
    x = 100 * result.x if sparsity else result.x
    G = len(result.groups)
    width = (np.ptp(x) if len(x) > 1 else 1.0) / max(len(x), 1) * 0.5
    rng = np.random.default_rng(0)
    for g, name in enumerate(result.groups):
        c = GROUP_COLOURS.get(name, BLUE)
        off = (g - (G - 1) / 2) * width / max(G, 1)
        vals = result.rms[g]
        for i in range(len(x)):
            v = vals[i][np.isfinite(vals[i])]
            ax.scatter(
                np.full(len(v), x[i] + off) + rng.uniform(-1, 1, len(v)) * width * 0.08,
                v,
                s=6,
                color=c,
                alpha=0.35,
                linewidths=0,
            )
        q1, med, q3 = _percentiles(vals)
        label = "networks" if name == "networks" else f"{name} networks"
        if name == "optimal" and "lowest-test-loss" in str(result.info.get("optimal", "")):
            label = "lowest-loss-level networks (none under the threshold)"
        ax.plot(x + off, med, "-o", color=c, ms=4, lw=1.8, label=label + " (median, quartiles)")
        ax.fill_between(x + off, q1, q3, color=c, alpha=0.15, lw=0)
        axd.plot(x + off, np.nanmean(result.diverged[g], axis=-1), "-o", color=c, ms=3)
    for name, arr in (("mpc", result.mpc), ("oracle", result.oracle)):
        _, med, _ = _percentiles(arr)
        label = "MPC (random shooting)" if name == "mpc" else "oracle inverse"
        ax.plot(x, med, "--", color=GROUP_COLOURS[name], lw=1.5, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("RMS tracking error (cm)")
    axd.set_ylabel("diverged")
    axd.set_ylim(-0.05, 1.05)
    axd.set_xlabel("sparsity (%)" if sparsity else result.x_label)
    info = result.info
    if sparsity:
        for key, ls, what in (("loss", ":", "loss"), ("flight", "-.", "flight")):
            s = info.get(f"{key}_breakdown_sparsity")
            if s is not None:
                for a in (ax, axd):
                    a.axvline(100 * s, color=GREY, ls=ls, lw=1.2)
                ax.text(
                    100 * s,
                    ax.get_ylim()[1],
                    f" {what} breakdown {100 * s:.0f} %",
                    rotation=90,
                    va="top",
                    ha="right",
                    fontsize=8,
                    color="dimgray",
                )
    targets = " + ".join(info.get("targets", []))
    ax.set_title(
        f"Closed-loop tracking vs {result.x_label or result.name} — {targets}, "
        f"{info.get('duration_s', 0):g} s flights",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def flight_figure(result, m: int = 0, p: int = 0, *, others=(), title: str | None = None):
    """One flight: path with its target, error over time, and the controls with their ranges.

    ``others``: further (label, FlightResult) pairs flown on the same flight (e.g. the MPC),
    drawn beside it (their flight 0 of controller 0)."""
    import matplotlib.pyplot as plt

    from mothlab.moth.geometry import body_shapes

    fig = plt.figure(figsize=(11, 6.2))
    gs = fig.add_gridspec(3, 2, width_ratios=[1.1, 1])
    ax = fig.add_subplot(gs[:, 0])
    t = result.t
    runs = [(_label(result, m), result, m, p, BLUE)] + [
        (lab, r, 0, p, c) for (lab, r), c in zip(others, (ORANGE, GREEN, PURPLE))
    ]
    tgt = result.target[p]
    ax.plot(tgt[:, 0], tgt[:, 1], color="black", lw=1, ls="--", label="target")
    for lab, r, mm, pp, c in runs:
        s = r.state[mm, pp]
        ax.plot(s[:, 0], s[:, 2], color=c, lw=1.5, label=lab)
    s = result.state[m, p]
    u = np.concatenate([result.controls[m, p], result.controls[m, p, -1:]])
    frames = np.linspace(0, len(t) - 1, 6).astype(int)
    shapes = body_shapes(s[frames], u[frames])
    for rank in range(len(frames)):
        a = 0.15 + 0.6 * rank / max(len(frames) - 1, 1)
        ax.fill(*shapes.head[rank].T, color=ORANGE, alpha=a, lw=0)
        ax.fill(*shapes.abdomen[rank].T, color=SKY, alpha=a, lw=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "closed-loop flight (joint path; bodies at 6 instants)", fontsize=10)
    ax1 = fig.add_subplot(gs[0, 1])
    for lab, r, mm, pp, c in runs:
        ax1.plot(t, r.error[mm, pp], color=c, lw=1.3, label=lab)
    ax1.set_ylabel("error (cm)")
    ax1.set_yscale("symlog", linthresh=1e-2)
    ax1.grid(alpha=0.3)
    tc = t[:-1]
    for row, (j, name, lo, hi, scale, unit) in enumerate(
        ((0, "F", 0.0, F_MAX, 1.0, "dyn"), (2, "τ", -TAU_MAX, TAU_MAX, 1.0, "dyn·cm"))
    ):
        axc = fig.add_subplot(gs[row + 1, 1], sharex=ax1)
        for _lab, r, mm, pp, c in runs:
            axc.step(tc, r.controls[mm, pp, :, j] * scale, where="post", color=c, lw=1.2)
        peak = max(float(np.abs(r.controls[mm, pp, :, j]).max()) for _, r, mm, pp, _ in runs)
        for b in (lo, hi):  # the S3 range, drawn when the controls come near it
            if b != 0 and peak > 0.3 * abs(b):
                axc.axhline(b, color=GREY, ls=":", lw=1)
        axc.set_ylabel(f"{name} ({unit})\nrange {lo:g}…{hi:g}", fontsize=8)
        axc.grid(alpha=0.3)
        if row == 1:
            axc.set_xlabel("t (s)")
    fig.tight_layout()
    return fig


def _label(result, m):
    if result.networks is None:
        return {"mpc": "MPC", "oracle": "oracle"}.get(result.controller, result.controller)
    n = result.networks
    return f"network {n.network[m]} at {100 * n.sparsity[m]:.0f} %"
