"""Matplotlib figures of a train-and-prune experiment (the first paper's Figs 2–5, S3 Fig).

Each function takes an experiment (or its path) and returns a ``matplotlib.figure.Figure``
(Agg backend, no pyplot state), ready for ``fig.savefig(...)``.
"""

from __future__ import annotations

import numpy as np

from mothlab.analysis import sparsity as sp


def _figure(figsize):
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, layout="constrained")


def _title_flag(exp) -> str:
    return " — AS PUBLISHED (defects 1–6 reproduced)" if getattr(exp, "as_published", False) else ""


def _arch(exp) -> str:
    return "-".join(str(s) for s in exp.layer_sizes)


def loss_vs_sparsity(exp, which: str = "test", threshold: float | None = None):
    """Fig 2–3 / S3 Fig: loss against sparsity, one thin line per network, median in bold,
    the threshold dashed and the breakdown level marked."""
    exp = sp._exp(exp)
    t = sp._threshold(exp, threshold)
    tab = sp.loss_table(exp, which)
    done = exp.levels_done
    x = 100 * tab["sparsity"][:done]
    fig = _figure((7, 4.2))
    ax = fig.add_subplot()
    ax.plot(x, tab["loss"][:done], color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(x, tab["median"][:done], color="k", lw=2.2, marker="o", ms=3, label="median")
    ax.fill_between(x, tab["q25"][:done], tab["q75"][:done], color="k", alpha=0.12,
                    label="interquartile range")
    ax.axhline(t, color="tab:red", ls="--", lw=1.2, label=f"threshold {t:g}")
    b = sp.breakdown_level(exp, t, which)
    if b >= 0:
        ax.axvline(100 * tab["sparsity"][b], color="tab:red", ls=":", lw=1,
                   label=f"breakdown: median over threshold ({100 * tab['sparsity'][b]:.0f} %)")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (% of weights pruned per layer)")
    ax.set_ylabel(f"{which} loss (scaled MSE)")
    ax.set_title(f"{exp.n_networks} networks {_arch(exp)}{_title_flag(exp)}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    return fig


def loss_distribution(exp, threshold: float | None = None):
    """Fig 4: loss distribution per level (box plots, threshold dashed) above the number of
    optimally sparse networks per level."""
    exp = sp._exp(exp)
    t = sp._threshold(exp, threshold)
    tab = sp.loss_table(exp, "test")
    counts = sp.optimal_counts(exp, t)
    done = exp.levels_done
    labels = [f"{100 * s:.0f}" for s in tab["sparsity"][:done]]
    fig = _figure((8, 5.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    data = [v[np.isfinite(v)] for v in tab["loss"][:done]]
    ax1.boxplot(data, positions=np.arange(done), widths=0.6, showfliers=True,
                flierprops={"ms": 2})
    ax1.axhline(t, color="tab:red", ls="--", lw=1.2, label=f"threshold {t:g}")
    ax1.set_yscale("log")
    ax1.set_ylabel("test loss")
    ax1.legend(fontsize=8)
    ax1.set_title(f"Loss per level and optimally sparse networks ({exp.n_networks} networks "
                  f"{_arch(exp)}){_title_flag(exp)}", fontsize=10)
    ax2.bar(np.arange(done), counts["count"][:done], color="tab:green")
    for i, c in enumerate(counts["count"][:done]):
        if c:
            ax2.text(i, c, str(int(c)), ha="center", va="bottom", fontsize=7)
    ax2.set_ylabel("optimally sparse")
    ax2.set_xticks(np.arange(done), labels, fontsize=7)
    ax2.set_xlabel(f"sparsity (%)   [no optimal level: {counts['none']} networks]")
    return fig


def input_connectivity(exp, level="optimal"):
    """Fig 5: connections from each input variable to hidden layer 1 (mean and spread over
    networks), at each network's optimal level by default."""
    from mothlab.data import INPUT_LABELS

    exp = sp._exp(exp)
    conn = sp.input_connectivity(exp, level)
    rows = conn[(conn >= 0).all(axis=1)]
    fig = _figure((7, 3.6))
    ax = fig.add_subplot()
    width = exp.layer_sizes[1]
    if len(rows):
        mean = rows.mean(0)
        ax.bar(np.arange(conn.shape[1]), mean, color="tab:purple", alpha=0.8)
        ax.errorbar(np.arange(conn.shape[1]), mean, yerr=rows.std(0), fmt="none", color="k",
                    lw=1)
        zero = (rows == 0).mean(0)
        for i, z in enumerate(zero):
            if z > 0:
                ax.text(i, mean[i], f"{100 * z:.0f}%\ncut", ha="center", va="bottom", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no network has an optimal level", transform=ax.transAxes,
                ha="center")
    ax.set_xticks(np.arange(conn.shape[1]), list(INPUT_LABELS)[: conn.shape[1]])
    ax.set_ylabel(f"connections to hidden layer 1 (of {width})")
    if isinstance(level, str):
        what = "at each network's optimal level"
    elif np.isscalar(level):
        what = f"at {100 * exp.sparsity_levels[int(level)]:.0f} % sparsity"
    else:
        what = "at each network's selected level"
    ax.set_title(f"Input connectivity {what} ({len(rows)} networks)"
                 f"{_title_flag(exp)}", fontsize=10)
    return fig
