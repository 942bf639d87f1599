"""Motif z-scores of real networks against a null model.

``z = (N_real − mean N_null) / sd N_null`` per network and motif. Under the two edge nulls
(``"edges_live_nodes"``, ``"edges_whole_layer"``) the mean and standard deviation are exact
(:func:`mothlab.analysis.nulls.edges_moments`) and no sampling is needed; under the other nulls they are estimated from ``n_random`` random networks with the sample
standard deviation (ddof = 1), and the z-score gets a percentile bootstrap confidence interval over
those random networks (it shows how much the estimate would move with another set of random
networks). A motif whose count has zero variance under the null (the edge count always; any motif
in a degenerate layer) has no z-score: it is reported as *undefined* (NaN plus a flag), never as a
number.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from mothlab.analysis.motifs import (
    CHAINS,
    CONVERGING3,
    MOTIFS,
    canonical,
    count_batch,
    live_canonical,
    normalise_masks,
    prune_batched,
)
from mothlab.analysis.nulls import ANALYTIC_NULLS, edges_moments, resolve_null, sample_null
from mothlab.progress import check_cancel, report, span

__all__ = ["ZScores", "zscores", "null_counts", "network_seed"]


@dataclass
class ZScores:
    """Z-scores of ``n_networks`` real networks under one null model.

    Every array has shape ``(n_networks, n_motifs)`` with motifs in the order of ``motifs``.

    Attributes
    ----------
    counts : int64, the real networks' motif counts
    mean, sd : float64, the null's mean and standard deviation of each count (exact or sampled)
    z : float64, z-score; NaN where ``undefined``
    ci_low, ci_high : float64, confidence interval of z (equal to z when the moments are exact)
    undefined : bool, True where the null has zero variance (z is not a number there)
    method : dict motif → "analytic" or "sampled"
    """

    motifs: tuple
    null: str
    n_random: int
    counts: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    z: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    undefined: np.ndarray
    method: dict
    confidence: float = 0.95
    settings: dict = field(default_factory=dict)

    @property
    def n_networks(self) -> int:
        return self.z.shape[0]

    def column(self, motif: str) -> int:
        if motif not in self.motifs:
            raise ValueError(f"unknown motif {motif!r}; choose one of {self.motifs}")
        return self.motifs.index(motif)

    def __getitem__(self, motif: str) -> np.ndarray:
        """z-scores of one motif, (n_networks,) (NaN where undefined)."""
        return self.z[:, self.column(motif)]

    def summary(self) -> list[dict]:
        """One row per motif: median z over networks, fraction positive, number undefined."""
        rows = []
        for k, name in enumerate(self.motifs):
            zk = self.z[:, k]
            ok = ~self.undefined[:, k]
            rows.append(
                {
                    "motif": name,
                    "method": self.method[name],
                    "median_z": float(np.median(zk[ok])) if ok.any() else math.nan,
                    "frac_positive": float(np.mean(zk[ok] > 0)) if ok.any() else math.nan,
                    "n_undefined": int((~ok).sum()),
                }
            )
        return rows

    def __repr__(self) -> str:
        lines = [
            f"ZScores(null={self.null!r}, n_networks={self.n_networks}, n_random={self.n_random})",
            f"  {'motif':<12} {'method':<9} {'median z':>10} {'z>0':>6} {'undefined':>10}",
        ]
        for r in self.summary():
            med = "undefined" if math.isnan(r["median_z"]) else f"{r['median_z']:+.2f}"
            pos = "" if math.isnan(r["frac_positive"]) else f"{r['frac_positive']:.0%}"
            lines.append(
                f"  {r['motif']:<12} {r['method']:<9} {med:>10} {pos:>6} {r['n_undefined']:>10}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-safe dict (lists; NaN kept as None)."""

        def clean(a):
            return [
                [None if (isinstance(v, float) and math.isnan(v)) else v for v in row]
                for row in np.asarray(a).tolist()
            ]

        return {
            "motifs": list(self.motifs),
            "null": self.null,
            "n_random": self.n_random,
            "counts": np.asarray(self.counts).tolist(),
            "mean": clean(self.mean),
            "sd": clean(self.sd),
            "z": clean(self.z),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "undefined": self.undefined.tolist(),
            "method": dict(self.method),
            "confidence": self.confidence,
            "settings": dict(self.settings),
        }


def network_seed(seed: int, index: int) -> int:
    """Independent 31-bit seed of network ``index`` (depends only on (seed, index))."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0] & 0x7FFFFFFF)


def null_counts(
    layers,
    null: str,
    n_random: int,
    seed: int,
    chains="paths",
    converging3="exact",
    batch: int = 250,
    swaps_per_edge: float = 10.0,
    progress=None,
    cancel=None,
) -> np.ndarray:
    """Motif counts of ``n_random`` null networks of one network (canonical form, list of (r, c)).

    Returns int64 (n_random, n_motifs), motifs in :data:`MOTIFS` order. ``progress`` gets an
    event per batch of ``batch`` samples; ``cancel`` is polled between batches (raises
    :class:`mothlab.progress.Cancelled`).
    """
    out = []
    done = 0
    part = 0
    while done < n_random:
        b = min(batch, n_random - done)
        check_cancel(cancel)
        sample = sample_null(
            null,
            layers,
            b,
            seed=network_seed(seed, 1_000_000 + part),
            swaps_per_edge=swaps_per_edge,
        )
        out.append(count_batch(sample, chains=chains, converging3=converging3))
        done += b
        part += 1
        report(progress, done / n_random, f"{done}/{n_random} random networks")
    return np.concatenate(out)


def _bootstrap_ci(x, samples, rng, n_boot, confidence):
    """Percentile bootstrap CI of z = (x − mean)/sd over the null samples (n, K)."""
    n = samples.shape[0]
    zs = np.empty((n_boot, samples.shape[1]))
    for i in range(n_boot):
        s = samples[rng.integers(0, n, n)]
        sd = s.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            zs[i] = np.where(sd > 0, (x - s.mean(axis=0)) / np.where(sd > 0, sd, 1), np.nan)
    a = (1 - confidence) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: zero-variance motifs
        return np.nanquantile(zs, a, axis=0), np.nanquantile(zs, 1 - a, axis=0)


def zscores(
    masks,
    biases=None,
    null: str = "edges_live_nodes",
    n_random: int = 1000,
    seed: int = 0,
    *,
    chains: str = "paths",
    converging3: str = "exact",
    remove_ghost_dead: bool = True,
    analytic: bool = True,
    confidence: float = 0.95,
    n_boot: int = 200,
    swaps_per_edge: float = 10.0,
    batch: int = 250,
    progress=None,
    cancel=None,
) -> ZScores:
    """Z-scores of every motif of one network or a batch of networks.

    Parameters
    ----------
    masks, biases : as :func:`mothlab.analysis.motifs.count_motifs` (leading network axis optional)
    null : a name of :data:`mothlab.analysis.nulls.NULLS` — "edges_live_nodes" (each layer's edge
        count, placed among the network's live nodes), "edges_whole_layer" (edge count placed over
        the whole layer), "live_nodes" (edge counts and live nodes, the papers' null done
        uniformly), "degrees" (every node's in/out-degree per layer pair) or "as_published" (the
        original ad hoc generator, for comparison). The old name "edges" means "edges_live_nodes".
    n_random : random networks per real network (sampled nulls; ignored by the analytic nulls)
    seed : base seed; network i uses an independent stream derived from (seed, i)
    analytic : for the two edge nulls, use the exact moments (True) or sample like the others
    confidence : level of the bootstrap interval of z (sampled nulls)
    progress : optional :data:`mothlab.progress.ProgressFn`; an event at the start and after each
        network (payload ``network``, ``n_networks``)
    cancel : optional :data:`mothlab.progress.CancelFn`, polled between networks and between
        sampled batches; raises :class:`mothlab.progress.Cancelled` (nothing is returned)

    Every null but "edges_whole_layer" acts on each network's live nodes (after ghost/dead removal
    unless ``remove_ghost_dead=False``); bias nodes count as sources as in :func:`count_motifs`.
    "edges_whole_layer" places the real (pruned) edge count over the full layer shapes.
    """
    null = resolve_null(null)
    if not (isinstance(n_random, (int, np.integer)) and n_random >= 2):
        raise ValueError(
            f"n_random must be an integer >= 2 (sample sd needs two), got {n_random!r}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if chains not in CHAINS:
        raise ValueError(f"chains must be one of {CHAINS}, got {chains!r}")
    if converging3 not in CONVERGING3:
        raise ValueError(f"converging3 must be one of {CONVERGING3}, got {converging3!r}")
    if null == "live_nodes" and not remove_ghost_dead:
        raise ValueError(
            "null 'live_nodes' keeps every live node live, so it needs the ghost and "
            "dead nodes removed first: use remove_ghost_dead=True (the default)"
        )
    ms, bs, _ = normalise_masks(masks, biases)
    if remove_ghost_dead:
        ms, bs = prune_batched(ms, bs)
    N, K = ms[0].shape[0], len(MOTIFS)
    report(progress, 0.0, f"z-scores of {N} networks under null {null!r}", network=0, n_networks=N)
    use_analytic = null in ANALYTIC_NULLS and analytic
    sampled = (
        set(MOTIFS) if not use_analytic else ({"chain2", "chain3"} if chains == "pairs" else set())
    )
    method = {k: ("sampled" if k in sampled else "analytic") for k in MOTIFS}
    aug = canonical(ms, bs)
    counts = count_batch(aug, chains, converging3)
    mean = np.zeros((N, K))
    sd = np.zeros((N, K))
    lo = np.zeros((N, K))
    hi = np.zeros((N, K))
    for i in range(N):
        check_cancel(cancel)
        if null == "edges_whole_layer":
            layers = [a[i : i + 1] for a in aug]
        else:
            layers = live_canonical(
                [m[i : i + 1] for m in ms], None if bs is None else [b[i : i + 1] for b in bs]
            )
        x = counts[i]
        sampled_cols = [j for j, k in enumerate(MOTIFS) if k in sampled]
        if use_analytic:
            mom = edges_moments([a.shape[1:] + (int(a.sum()),) for a in layers], converging3)
            for j, k in enumerate(MOTIFS):
                if k not in sampled:
                    mean[i, j] = float(mom[k][0])
                    sd[i, j] = math.sqrt(mom[k][1]) if mom[k][1] > 0 else 0.0
                    lo[i, j] = hi[i, j] = np.nan  # filled from z below
        if sampled_cols:
            s = null_counts(
                [a[0] for a in layers],
                null,
                n_random,
                network_seed(seed, i),
                chains=chains,
                converging3=converging3,
                batch=batch,
                swaps_per_edge=swaps_per_edge,
                progress=span(progress, i / N, (i + 1) / N),
                cancel=cancel,
            )[:, sampled_cols].astype(np.float64)
            mean[i, sampled_cols] = s.mean(axis=0)
            sd[i, sampled_cols] = s.std(axis=0, ddof=1)
            rng = np.random.default_rng(network_seed(seed, 2_000_000 + i))
            lo[i, sampled_cols], hi[i, sampled_cols] = _bootstrap_ci(
                x[sampled_cols].astype(np.float64), s, rng, n_boot, confidence
            )
        report(progress, (i + 1) / N, f"network {i + 1}/{N}", network=i + 1, n_networks=N)
    undefined = ~(sd > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(undefined, np.nan, (counts - mean) / np.where(undefined, 1.0, sd))
    for j, k in enumerate(MOTIFS):
        if method[k] == "analytic":
            lo[:, j] = hi[:, j] = z[:, j]
    lo[undefined] = np.nan
    hi[undefined] = np.nan
    settings = {
        "null": null,
        "n_random": int(n_random),
        "seed": int(seed),
        "chains": chains,
        "converging3": converging3,
        "remove_ghost_dead": bool(remove_ghost_dead),
        "analytic": bool(analytic),
        "confidence": float(confidence),
        "n_boot": int(n_boot),
        "swaps_per_edge": float(swaps_per_edge),
        "biases": biases is not None,
    }
    return ZScores(
        motifs=MOTIFS,
        null=null,
        n_random=0 if not sampled else int(n_random),
        counts=counts,
        mean=mean,
        sd=sd,
        z=z,
        ci_low=lo,
        ci_high=hi,
        undefined=undefined,
        method=method,
        confidence=confidence,
        settings=settings,
    )
