"""Motif figures (matplotlib, no global pyplot state): the motif paper's Fig 2 and Fig 3.

- :func:`zscore_distributions`: z-scores of every motif across the networks of an experiment at one
  level (or each network at its own optimally sparse level) — Fig 2.
- :func:`zscore_vs_sparsity`: median z-score (with the interquartile band) of each motif against
  sparsity, beside the test loss — Fig 3.

Both return a :class:`matplotlib.figure.Figure`; save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np

from mothlab.analysis.motifs import MOTIF_LABELS

_COLORS = {"edges": "#777777", "diverging2": "#1f77b4", "converging2": "#ff7f0e",
           "chain2": "#2ca02c", "diverging3": "#17becf", "converging3": "#d62728",
           "chain3": "#8c564b", "bifan": "#9467bd", "biparallel": "#e377c2"}


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def zscore_distributions(results, level="optimal", experiment=None, motifs=None,
                         threshold: float = 1e-3):
    """Fig 2: distribution over networks of each motif's z-score.

    Parameters
    ----------
    results : :class:`mothlab.analysis.experiment_motifs.MotifResults`
    level : int (a level index) or "optimal" (each network at its own optimally sparse level, or
        near-best level when none reaches the threshold — see
        :func:`mothlab.analysis.experiment_motifs.summary_levels`; needs ``experiment``)
    motifs : motif keys to show (default: all with at least one defined z-score)
    """
    if level == "optimal":
        if experiment is None:
            raise ValueError("level='optimal' needs the experiment (for each network's optimal "
                             "level); pass experiment=... or an integer level")
        from mothlab.analysis.experiment_motifs import summary_levels

        levels, where = summary_levels(experiment, results, threshold)
        zs = results.at_optimal(levels)
        where = where.replace(" (", "\n(")
    else:
        if not isinstance(level, (int, np.integer)) or not 0 <= level < len(results.done):
            raise ValueError(f"level must be 'optimal' or an integer in [0, {len(results.done)}), "
                             f"got {level!r}")
        if not results.done[level]:
            raise ValueError(f"level {level} has not been analysed yet")
        zs = {k: results.z[k][level] for k in results.motifs}
        where = f"sparsity {results.sparsity_levels[level]:.0%}"
    names = [k for k in (motifs or results.motifs) if np.isfinite(zs[k]).any()]
    fig = _figure((max(1.1 * len(names) + 1.5, 6.5), 4.3))
    ax = fig.add_subplot()
    data = [zs[k][np.isfinite(zs[k])] for k in names]
    if names:
        parts = ax.boxplot(data, showfliers=False, patch_artist=True)
        for patch, k in zip(parts["boxes"], names):
            patch.set_facecolor(_COLORS.get(k, "#999999"))
            patch.set_alpha(0.5)
        rng = np.random.default_rng(0)
        for i, (k, d) in enumerate(zip(names, data), start=1):
            ax.plot(i + rng.uniform(-0.15, 0.15, d.size), d, ".", ms=3,
                    color=_COLORS.get(k, "#555555"))
        ax.set_xticks(range(1, len(names) + 1), [MOTIF_LABELS[k] for k in names], rotation=30,
                      ha="right")
    else:
        ax.text(0.5, 0.5, "no defined z-scores (zero-variance null)", ha="center",
                transform=ax.transAxes)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("z-score")
    ax.set_title(f"Motif z-scores across networks (null: {results.null})\nat {where}",
                 fontsize=10)
    return fig


def zscore_vs_sparsity(results, experiment=None, motifs=None, test_loss=None):
    """Fig 3: median z-score (IQR band) of each motif against sparsity, beside the test loss.

    ``test_loss`` (L, n_networks) defaults to ``experiment.test_loss``; without either, only the
    z-score panel is drawn.
    """
    if test_loss is None and experiment is not None:
        test_loss = np.asarray(experiment.test_loss)
    names = [k for k in (motifs or results.motifs)
             if np.isfinite(results.z[k][results.done]).any()]
    done = results.done
    s = 100 * results.sparsity_levels[done]
    ncols = 2 if test_loss is not None else 1
    fig = _figure((5.5 * ncols, 4))
    ax = fig.add_subplot(1, ncols, 1)
    for k in names:
        z = results.z[k][done]
        med = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in z])
        q1 = np.array([np.nanpercentile(r, 25) if np.isfinite(r).any() else np.nan for r in z])
        q3 = np.array([np.nanpercentile(r, 75) if np.isfinite(r).any() else np.nan for r in z])
        c = _COLORS.get(k, None)
        ax.plot(s, med, "o-", ms=3, color=c, label=MOTIF_LABELS[k])
        ax.fill_between(s, q1, q3, color=c, alpha=0.15)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("z-score (median, IQR)")
    ax.set_title(f"Motif z-scores vs sparsity (null: {results.null})")
    if names:
        ax.legend(fontsize=7, ncol=2)
    if test_loss is not None:
        ax2 = fig.add_subplot(1, ncols, 2, sharex=ax)
        tl = np.asarray(test_loss)[done]
        with np.errstate(all="ignore"):
            ax2.plot(s, np.nanmedian(tl, axis=1), "ko-", ms=3, label="median")
            ax2.fill_between(s, np.nanpercentile(tl, 25, axis=1), np.nanpercentile(tl, 75, axis=1),
                             color="k", alpha=0.15, label="IQR")
        ax2.set_yscale("log")
        ax2.axhline(1e-3, color="r", ls="--", lw=0.8, label="threshold 1e-3")
        ax2.set_xlabel("sparsity (%)")
        ax2.set_ylabel("test loss (MSE)")
        ax2.set_title("Test loss")
        ax2.legend(fontsize=7)
    return fig
