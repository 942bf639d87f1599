"""Motif counts and z-scores for every network at every level of an experiment, stored with it.

Results live inside the experiment's zarr store, in their own group ``motifs/<null>``:

- arrays ``counts`` int64, ``mean``, ``sd``, ``z``, ``ci_low``, ``ci_high`` float64, ``undefined``
  bool, each ``(n_levels, n_networks, n_motifs)`` with one chunk per level, and ``done`` bool
  ``(n_levels,)``;
- a JSON attribute ``"mothlab_motifs"`` with the schema version, mothlab version, motif names, the
  full settings (null, n_random, seed, chains, converging3, biases, ...) and per-level timings.

A level is marked done only after all its arrays are written, so an interrupted analysis leaves a
readable prefix and :func:`analyse_experiment` resumes from it (same settings) — the analysis can
also run while the experiment itself is still running: it covers the levels finished so far.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mothlab.analysis import motifs as _m
from mothlab.analysis import nulls as _n
from mothlab.analysis import zscores as _z

SCHEMA = 1
ATTR = "mothlab_motifs"
_FIELDS = ("counts", "mean", "sd", "z", "ci_low", "ci_high", "undefined")


def _experiment(exp_or_path):
    if isinstance(exp_or_path, (str, Path)):
        from mothlab.nets import load_experiment

        return load_experiment(exp_or_path)
    for attr in ("path", "masks", "sparsity_levels", "n_networks"):
        if not hasattr(exp_or_path, attr):
            raise ValueError(f"expected an Experiment (or a path to one); {exp_or_path!r} has no "
                             f"{attr!r}")
    return exp_or_path


def _levels_done(exp) -> int:
    return int(getattr(exp, "levels_done", len(exp.sparsity_levels)))


@dataclass
class MotifResults:
    """Stored motif analysis of an experiment under one null.

    ``counts``, ``z``, ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``undefined`` are dicts motif →
    array ``(n_levels, n_networks)`` (levels not yet analysed hold zeros/NaN; see ``done``).
    """

    null: str
    motifs: tuple
    sparsity_levels: np.ndarray
    done: np.ndarray
    counts: dict
    mean: dict
    sd: dict
    z: dict
    ci_low: dict
    ci_high: dict
    undefined: dict
    settings: dict = field(default_factory=dict)
    timings_s: list = field(default_factory=list)

    @property
    def n_levels_done(self) -> int:
        return int(self.done.sum())

    def at_level(self, level: int) -> _z.ZScores:
        """The z-scores of one level as a :class:`~mothlab.analysis.zscores.ZScores`."""
        if not self.done[level]:
            raise ValueError(f"level {level} has not been analysed yet; run analyse_experiment")

        def stack(d):
            return np.stack([d[k][level] for k in self.motifs], axis=1)

        method = {k: "analytic" if (self.null == "edges" and self.settings.get("analytic")
                                    and not (k.startswith("chain")
                                             and self.settings.get("chains") == "pairs"))
                  else "sampled" for k in self.motifs}
        return _z.ZScores(motifs=self.motifs, null=self.null,
                          n_random=int(self.settings.get("n_random", 0)),
                          counts=stack(self.counts), mean=stack(self.mean), sd=stack(self.sd),
                          z=stack(self.z), ci_low=stack(self.ci_low), ci_high=stack(self.ci_high),
                          undefined=stack(self.undefined), method=method,
                          confidence=float(self.settings.get("confidence", 0.95)),
                          settings=dict(self.settings))

    def at_optimal(self, optimal_level) -> dict:
        """z-scores of each network at its own level: dict motif → (n_networks,) (NaN where the
        network has no optimal level, −1, or it is not analysed)."""
        idx = np.asarray(optimal_level)
        out = {}
        for k in self.motifs:
            v = np.full(idx.shape, np.nan)
            ok = (idx >= 0) & (idx < len(self.done))
            ok[ok] &= self.done[idx[ok]]
            v[ok] = self.z[k][idx[ok], np.flatnonzero(ok)]
            out[k] = v
        return out


def _settings(null, n_random, seed, chains, converging3, use_biases, remove_ghost_dead, analytic,
              confidence, swaps_per_edge):
    exact = null == "edges" and analytic and chains == "paths"
    return {"null": null, "n_random": 0 if exact else int(n_random), "seed": int(seed), "chains": chains,
            "converging3": converging3, "biases": bool(use_biases),
            "remove_ghost_dead": bool(remove_ghost_dead), "analytic": bool(analytic),
            "confidence": float(confidence), "swaps_per_edge": float(swaps_per_edge)}


def _open_group(exp, null, settings, overwrite, resume):
    import zarr

    from mothlab import __version__

    root = zarr.open_group(str(exp.path), mode="r+")
    name = f"motifs/{null}"
    L, N, K = len(exp.sparsity_levels), int(exp.n_networks), len(_m.MOTIFS)
    if name in root:
        g = root[name]
        meta = dict(g.attrs.get(ATTR, {}))
        same = meta.get("settings") == settings and meta.get("motifs") == list(_m.MOTIFS)
        if overwrite or not resume:
            del root[name]
        elif not same:
            raise ValueError(f"{exp.path} already holds motif results for null {null!r} computed "
                             f"with other settings ({meta.get('settings')}); pass overwrite=True "
                             "(CLI: --overwrite) to recompute them")
        else:
            return g
    g = root.require_group(name)
    for f in _FIELDS:
        dtype = {"counts": "int64", "undefined": "bool"}.get(f, "float64")
        fill = {"counts": 0, "undefined": False}.get(f, math.nan)
        g.create_array(f, shape=(L, N, K), chunks=(1, N, K), dtype=dtype, fill_value=fill)
    g.create_array("done", shape=(L,), chunks=(L,), dtype="bool", fill_value=False)
    g.attrs[ATTR] = {"schema_version": SCHEMA, "mothlab_version": __version__,
                     "motifs": list(_m.MOTIFS), "settings": settings,
                     "sparsity_levels": [float(s) for s in exp.sparsity_levels],
                     "timings_s": [None] * L}
    return g


def analyse_experiment(exp_or_path, null: str = "edges", n_random: int = 1000, seed: int = 0, *,
                       chains: str = "paths", converging3: str = "exact", use_biases: bool = True,
                       remove_ghost_dead: bool = True, analytic: bool = True,
                       confidence: float = 0.95, swaps_per_edge: float = 10.0,
                       progress=None, cancel=None, resume: bool = True,
                       overwrite: bool = False) -> MotifResults:
    """Count motifs and z-scores of every network at every finished level; store them.

    Parameters
    ----------
    exp_or_path : an Experiment (``mothlab.nets.load_experiment``) or the path of its store
    null, n_random, seed, chains, converging3, remove_ghost_dead, analytic, confidence :
        as :func:`mothlab.analysis.zscores.zscores`
    use_biases : count unpruned biases as source nodes (the papers' convention)
    progress : callable receiving {"level", "n_levels", "sparsity", "network", "n_networks",
        "message"} after each network
    cancel : callable returning True to stop between networks (the current level stays undone)
    resume : keep levels already stored with the same settings
    overwrite : discard stored results for this null first

    Returns the :class:`MotifResults` as stored (see :func:`load_motif_results`).
    """
    if null not in _n.NULLS:
        raise ValueError(f"null must be one of {_n.NULLS}, got {null!r}")
    exp = _experiment(exp_or_path)
    settings = _settings(null, n_random, seed, chains, converging3, use_biases, remove_ghost_dead,
                         analytic, confidence, swaps_per_edge)
    g = _open_group(exp, null, settings, overwrite, resume)
    L = len(exp.sparsity_levels)
    n_done_exp = _levels_done(exp)
    done = np.asarray(g["done"][...])
    for level in range(min(L, n_done_exp)):
        if done[level]:
            continue
        t0 = time.perf_counter()
        masks = exp.masks(level)
        biases = exp.bias_masks(level) if use_biases else None
        N = masks[0].shape[0]
        cancelled = False

        def prog(ev, level=level, N=N):
            nonlocal cancelled
            if progress is not None:
                progress({"level": level, "n_levels": L,
                          "sparsity": float(exp.sparsity_levels[level]),
                          "network": ev["network"], "n_networks": N,
                          "message": f"level {level + 1}/{L}: network {ev['network']}/{N}"})
            if cancel is not None and cancel():
                cancelled = True
                raise _Cancelled

        try:
            zs = _z.zscores(masks, biases, null=null, n_random=n_random,
                            seed=_z.network_seed(seed, 10_000 + level), chains=chains,
                            converging3=converging3, remove_ghost_dead=remove_ghost_dead,
                            analytic=analytic, confidence=confidence,
                            swaps_per_edge=swaps_per_edge, progress=prog)
        except _Cancelled:
            cancelled = True
        if cancelled:
            break
        for f in _FIELDS:
            g[f][level] = getattr(zs, f)
        meta = dict(g.attrs[ATTR])
        timings = list(meta["timings_s"])
        timings[level] = time.perf_counter() - t0
        meta["timings_s"] = timings
        g.attrs[ATTR] = meta
        done[level] = True
        g["done"][...] = done  # marks the level complete last
    return load_motif_results(exp, null)


class _Cancelled(Exception):
    pass


def load_motif_results(exp_or_path, null: str = "edges") -> MotifResults | None:
    """The stored motif results of an experiment under ``null``, or None when absent."""
    import zarr

    if null not in _n.NULLS:
        raise ValueError(f"null must be one of {_n.NULLS}, got {null!r}")
    path = exp_or_path if isinstance(exp_or_path, (str, Path)) else exp_or_path.path
    if not Path(path).exists():
        raise FileNotFoundError(f"no experiment store at {path}")
    root = zarr.open_group(str(path), mode="r")
    name = f"motifs/{null}"
    if name not in root:
        return None
    g = root[name]
    meta = dict(g.attrs.get(ATTR, {}))
    if meta.get("schema_version", 0) > SCHEMA:
        raise ValueError(f"motif results in {path} use schema {meta.get('schema_version')}; this "
                         f"mothlab reads <= {SCHEMA}. Upgrade mothlab.")
    motifs = tuple(meta["motifs"])
    arrays = {f: np.asarray(g[f][...]) for f in _FIELDS}

    def split(a):
        return {k: a[:, :, j] for j, k in enumerate(motifs)}

    return MotifResults(null=null, motifs=motifs,
                        sparsity_levels=np.asarray(meta["sparsity_levels"], float),
                        done=np.asarray(g["done"][...]), settings=dict(meta["settings"]),
                        timings_s=list(meta.get("timings_s", [])),
                        **{f: split(arrays[f]) for f in _FIELDS})


def summary_levels(exp_or_path, results: MotifResults, threshold: float = 1e-3):
    """Per network, the level at which to read its z-scores, and a phrase saying which.

    Each network's optimally sparse level (sparsest level with test loss below ``threshold``);
    when no network reaches the threshold (small or briefly trained runs), each network's sparsest
    analysed level whose test loss is within 10% of its best — the level before it breaks down.
    Returns ((n_networks,) int, −1 where none; str).
    """
    exp = _experiment(exp_or_path)
    opt = np.asarray(exp.optimal_level(threshold))
    if (opt >= 0).any():
        return opt, f"each network's optimal sparsity (test loss < {threshold:g})"
    tl = np.asarray(exp.test_loss, float)[: len(results.done)]
    tl = np.where(results.done[:, None] & np.isfinite(tl), tl, np.inf)
    best = tl.min(axis=0)
    near = np.where(tl <= 1.1 * best[None, :], np.arange(len(tl))[:, None], -1).max(axis=0)
    return near, (f"each network's sparsest level within 10% of its best test loss (none "
                  f"reaches {threshold:g})")


def optimal_summary(exp_or_path, results: MotifResults, threshold: float = 1e-3) -> list[dict]:
    """Per motif, at each network's optimally sparse level (see :func:`summary_levels`): median z,
    fraction of networks with z > 0 and z < 0, how many networks are counted, and the basis."""
    levels, basis = summary_levels(exp_or_path, results, threshold)
    zo = results.at_optimal(levels)
    rows = []
    for k in results.motifs:
        v = zo[k][np.isfinite(zo[k])]
        rows.append({"motif": k, "n": int(v.size),
                     "median_z": float(np.median(v)) if v.size else math.nan,
                     "frac_positive": float(np.mean(v > 0)) if v.size else math.nan,
                     "frac_negative": float(np.mean(v < 0)) if v.size else math.nan,
                     "basis": basis})
    return rows
