"""Motif counts and z-scores for every network at every level of an experiment, stored with it.

Results live inside the experiment's store (:mod:`mothlab.store`), in a child group
``motifs/<null>`` of kind ``"motifs"``:

- arrays ``counts`` int64, ``mean``, ``sd``, ``z``, ``ci_low``, ``ci_high`` float64, ``undefined``
  bool, each ``(n_levels, n_networks, n_motifs)`` with one chunk per level, and ``done`` bool
  ``(n_levels,)``;
- the child's mothlab header: motif names, the full settings (null, n_random, seed, chains,
  converging3, biases, ...), the sparsity levels and per-level timings.

A level is marked done only after all its arrays are written, so an interrupted analysis leaves a
readable prefix and :func:`analyse_experiment` resumes from it (same settings) — the analysis can
also run while the experiment itself is still running: it covers the levels finished so far.

Old stores (before the null names said what they keep) hold ``motifs/edges`` with the header
under the attribute ``"mothlab_motifs"``; :func:`load_motif_results` reads them as
``"edges_live_nodes"`` (:data:`mothlab.analysis.nulls.NULL_ALIASES`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mothlab import store
from mothlab.analysis.motifs import MOTIFS
from mothlab.analysis.nulls import ANALYTIC_NULLS, NULL_ALIASES, resolve_null
from mothlab.analysis.sparsity import SELECTION_RULES, format_loss, load, sparsity_result
from mothlab.analysis.zscores import ZScores, network_seed, zscores
from mothlab.progress import Cancelled, Progress, check_cancel, report, span

__all__ = [
    "MotifResult",
    "analyse_experiment",
    "load_motif_results",
    "motif_result",
    "motif_summary",
    "MIN_NETWORKS",
    "KIND",
]

KIND = "motifs"
"""Store kind of a motif analysis (a child group of an experiment store)."""

MIN_NETWORKS = 5
"""Fewest networks a motif summary at the optimal level rests on by default: below five a median
and a fraction of signs say next to nothing (the paper's figures rest on 858 networks)."""

_LEGACY_ATTR = "mothlab_motifs"  # header key of stores written before motif results used store.py
_FIELDS = ("counts", "mean", "sd", "z", "ci_low", "ci_high", "undefined")


@dataclass
class MotifResult:
    """Stored motif analysis of an experiment under one null.

    ``counts``, ``z``, ``mean``, ``sd``, ``ci_low``, ``ci_high``, ``undefined`` are dicts motif →
    array ``(n_levels, n_networks)`` (levels not yet analysed hold zeros/NaN; see ``done``).
    ``null`` is the current name of the null (an old store's "edges" reads as
    "edges_live_nodes").
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

    @property
    def n_networks(self) -> int:
        return int(next(iter(self.z.values())).shape[1]) if self.z else 0

    def at_level(self, level: int) -> ZScores:
        """The z-scores of one level as a :class:`~mothlab.analysis.zscores.ZScores`."""
        if not self.done[level]:
            raise ValueError(f"level {level} has not been analysed yet; run analyse_experiment")

        def stack(d):
            return np.stack([d[k][level] for k in self.motifs], axis=1)

        exact = self.null in ANALYTIC_NULLS and self.settings.get("analytic")
        method = {
            k: "analytic"
            if exact and not (k.startswith("chain") and self.settings.get("chains") == "pairs")
            else "sampled"
            for k in self.motifs
        }
        return ZScores(
            motifs=self.motifs,
            null=self.null,
            n_random=int(self.settings.get("n_random", 0)),
            counts=stack(self.counts),
            mean=stack(self.mean),
            sd=stack(self.sd),
            z=stack(self.z),
            ci_low=stack(self.ci_low),
            ci_high=stack(self.ci_high),
            undefined=stack(self.undefined),
            method=method,
            confidence=float(self.settings.get("confidence", 0.95)),
            settings=dict(self.settings),
        )

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


def _settings(
    null,
    n_random,
    seed,
    chains,
    converging3,
    use_biases,
    remove_ghost_dead,
    analytic,
    confidence,
    swaps_per_edge,
):
    exact = null in ANALYTIC_NULLS and analytic and chains == "paths"
    return {
        "null": null,
        "n_random": 0 if exact else int(n_random),
        "seed": int(seed),
        "chains": chains,
        "converging3": converging3,
        "biases": bool(use_biases),
        "remove_ghost_dead": bool(remove_ghost_dead),
        "analytic": bool(analytic),
        "confidence": float(confidence),
        "swaps_per_edge": float(swaps_per_edge),
    }


def _open_group(exp, null, settings, overwrite, resume):
    root, _ = store.open_store(exp.path, "experiment", mode="r+")
    name = f"motifs/{null}"
    L, N, K = len(exp.sparsity_levels), int(exp.n_networks), len(MOTIFS)
    found = store.open_subgroup(root, name, KIND)
    if found is not None and not overwrite and resume:
        g, meta = found
        if meta.get("settings") != settings or meta.get("motifs") != list(MOTIFS):
            raise ValueError(
                f"{exp.path} already holds motif results for null {null!r} computed "
                f"with other settings ({meta.get('settings')}); pass overwrite=True "
                "(CLI: --overwrite) to recompute them"
            )
        return g
    g = store.create_subgroup(
        root,
        name,
        KIND,
        {
            "motifs": list(MOTIFS),
            "settings": settings,
            "sparsity_levels": [float(s) for s in exp.sparsity_levels],
            "timings_s": [None] * L,
        },
        overwrite=True,
    )
    for f in _FIELDS:
        dtype = {"counts": "int64", "undefined": "bool"}.get(f, "float64")
        fill = {"counts": 0, "undefined": False}.get(f, math.nan)
        g.create_array(f, shape=(L, N, K), chunks=(1, N, K), dtype=dtype, fill_value=fill)
    g.create_array("done", shape=(L,), chunks=(L,), dtype="bool", fill_value=False)
    return g


def analyse_experiment(
    exp_or_path,
    null: str = "edges_live_nodes",
    n_random: int = 1000,
    seed: int = 0,
    *,
    chains: str = "paths",
    converging3: str = "exact",
    use_biases: bool = True,
    remove_ghost_dead: bool = True,
    analytic: bool = True,
    confidence: float = 0.95,
    swaps_per_edge: float = 10.0,
    progress=None,
    cancel=None,
    resume: bool = True,
    overwrite: bool = False,
) -> MotifResult:
    """Count motifs and z-scores of every network at every finished level; store them.

    Parameters
    ----------
    exp_or_path : an Experiment (``mothlab.nets.load_experiment``) or the path of its store
    null, n_random, seed, chains, converging3, remove_ghost_dead, analytic, confidence :
        as :func:`mothlab.analysis.zscores.zscores` (old null name "edges" = "edges_live_nodes")
    use_biases : count unpruned biases as source nodes (the papers' convention)
    progress : :data:`mothlab.progress.ProgressFn`; events at the start and after each network,
        payload ``level``, ``n_levels``, ``sparsity``, ``network``, ``n_networks``
    cancel : :data:`mothlab.progress.CancelFn`, polled between networks; the current level stays
        undone, the levels before it stay stored, and :class:`~mothlab.progress.Cancelled` is
        raised (a second call with the same settings resumes)
    resume : keep levels already stored with the same settings
    overwrite : discard stored results for this null first

    Returns the :class:`MotifResult` as stored (see :func:`load_motif_results`).
    """
    null = resolve_null(null)
    exp = load(exp_or_path)
    settings = _settings(
        null,
        n_random,
        seed,
        chains,
        converging3,
        use_biases,
        remove_ghost_dead,
        analytic,
        confidence,
        swaps_per_edge,
    )
    report(progress, 0.0, f"motif analysis ({null}): opening {exp.path}")
    g = _open_group(exp, null, settings, overwrite, resume)
    L = len(exp.sparsity_levels)
    done = np.asarray(g["done"][...])
    todo = [lv for lv in range(min(L, int(exp.levels_done))) if not done[lv]]
    for i, level in enumerate(todo):
        check_cancel(cancel, "levels done so far are stored; resume with the same settings")
        t0 = time.perf_counter()
        masks = exp.masks(level)
        biases = exp.bias_masks(level) if use_biases else None
        sub = span(progress, i / len(todo), (i + 1) / len(todo))
        sparsity = float(exp.sparsity_levels[level])

        def prog(ev, level=level, sparsity=sparsity, sub=sub):
            if sub is not None:
                sub(
                    Progress(
                        ev.fraction,
                        f"level {level + 1}/{L} ({100 * sparsity:g} %): {ev.message}",
                        dict(ev.payload, level=level, n_levels=L, sparsity=sparsity),
                    )
                )

        try:
            zs = zscores(
                masks,
                biases,
                null=null,
                n_random=n_random,
                seed=network_seed(seed, 10_000 + level),
                chains=chains,
                converging3=converging3,
                remove_ghost_dead=remove_ghost_dead,
                analytic=analytic,
                confidence=confidence,
                swaps_per_edge=swaps_per_edge,
                progress=prog,
                cancel=cancel,
            )
        except Cancelled:
            raise Cancelled(
                f"motif analysis cancelled at level {level}; the {int(done.sum())} "
                "levels done are stored; run it again with the same settings to "
                "resume"
            ) from None
        for f in _FIELDS:
            g[f][level] = getattr(zs, f)
        timings = list(store.read_header(g)["timings_s"])
        timings[level] = round(time.perf_counter() - t0, 3)
        done[level] = True
        g["done"][...] = done  # marks the level complete last
        # the level's chunks and the done flags are checked whenever the results are opened
        store.seal_level(
            g,
            f"levels/{level}",
            also=["done"],
            timings_s=timings,
            paths=store.chunk_paths(g, list(_FIELDS), level, level + 1),
        )
    if done[: int(exp.levels_done)].all() and int(exp.levels_done) == L:
        store.mark_complete(g)
    report(progress, 1.0, f"motif analysis ({null}): {int(done.sum())}/{L} levels")
    return load_motif_results(exp, null)


def _read_group(g, meta, null) -> MotifResult:
    motifs = tuple(meta["motifs"])
    arrays = {f: np.asarray(g[f][...]) for f in _FIELDS}

    def split(a):
        return {k: a[:, :, j] for j, k in enumerate(motifs)}

    return MotifResult(
        null=null,
        motifs=motifs,
        sparsity_levels=np.asarray(meta["sparsity_levels"], float),
        done=np.asarray(g["done"][...]),
        settings=dict(meta["settings"]),
        timings_s=list(meta.get("timings_s", [])),
        **{f: split(arrays[f]) for f in _FIELDS},
    )


def load_motif_results(exp_or_path, null: str = "edges_live_nodes") -> MotifResult | None:
    """The stored motif results of an experiment under ``null``, or None when absent.

    Reads old stores too: their ``motifs/edges`` group (old name, old header key) is returned as
    null ``"edges_live_nodes"``."""
    null = resolve_null(null)
    path = Path(exp_or_path if isinstance(exp_or_path, (str, Path)) else exp_or_path.path)
    root, _ = store.open_store(path, "experiment", mode="r")
    names = [null] + [old for old, new in NULL_ALIASES.items() if new == null]
    for name in names:
        found = store.open_subgroup(root, f"motifs/{name}", KIND)
        if found is not None:
            return _read_group(found[0], found[1], null)
        if f"motifs/{name}" in root:  # written before motif results had a store header
            g = root[f"motifs/{name}"]
            meta = dict(g.attrs.get(_LEGACY_ATTR, {}))
            if meta.get("schema_version", 0) > 1:
                raise ValueError(
                    f"motif results in {path} use schema "
                    f"{meta.get('schema_version')}; this mothlab reads <= 1. "
                    "Upgrade mothlab."
                )
            if meta:
                return _read_group(g, meta, null)
    return None


def motif_result(exp_or_path, null: str) -> MotifResult | None:
    """The stored motif analysis of an experiment under ``null`` (None when there is none).

    The :class:`MotifResult` carries ``counts``, ``z``, ``mean``, ``sd`` (dicts motif →
    (n_levels, n_networks)), ``settings``, ``null`` and ``n_networks``."""
    return load_motif_results(exp_or_path, null)


def motif_summary(
    exp_or_path,
    null: str,
    rule: str = "paper",
    min_networks: int = MIN_NETWORKS,
    threshold: float | None = None,
) -> list[dict]:
    """Per motif, z-scores at each network's optimal level under ``rule``.

    One row per motif: ``motif``, ``n_networks`` (networks with an analysed optimal level: what
    the row rests on), ``n_defined`` (of those, with a defined z; the edge count never has one
    under the edge nulls), ``median_z``, ``frac_positive``, ``frac_negative``, ``levels``
    (the distinct optimal levels counted), ``rule``, ``null`` and ``basis`` (a sentence saying
    what the row rests on).

    Raises ValueError (with the count and the fix) when the analysis is missing, or when fewer
    than ``min_networks`` networks (default :data:`MIN_NETWORKS`) have an analysed optimal level:
    a summary of fewer networks is not shown as "the" result.
    """
    null = resolve_null(null)
    if rule not in SELECTION_RULES:
        raise ValueError(f"rule must be one of {list(SELECTION_RULES)}, got {rule!r}")
    if not (isinstance(min_networks, (int, np.integer)) and min_networks >= 1):
        raise ValueError(f"min_networks must be an integer >= 1, got {min_networks!r}")
    exp = load(exp_or_path)
    res = load_motif_results(exp, null)
    if res is None:
        raise ValueError(
            f"{exp.path} holds no motif analysis under null {null!r}; run "
            f"`mothlab motifs {exp.path} --null {null}` first"
        )
    sr = sparsity_result(exp, threshold)
    opt = sr.optimal_level(rule)
    zo = res.at_optimal(opt)
    analysed = (opt >= 0) & (opt < len(res.done))
    analysed[analysed] &= res.done[opt[analysed]]
    n_opt, n_ok = int((opt >= 0).sum()), int(analysed.sum())
    if n_ok < min_networks:
        raise ValueError(
            f"only {n_ok} of {exp.n_networks} networks have an analysed optimal level under the "
            f"{rule!r} rule ({SELECTION_RULES[rule]}, threshold {format_loss(sr.threshold)}; "
            f"{n_opt} with an optimal level at all); a motif summary needs at least {min_networks}. Train more "
            "networks or longer, analyse the missing levels, or pass a smaller min_networks."
        )
    levels = sorted({int(v) for v in opt[analysed]})
    basis = (
        f"{n_ok} of {exp.n_networks} networks, each at its optimal level under the {rule!r} "
        f"rule ({SELECTION_RULES[rule]}, test loss < {format_loss(sr.threshold)})"
    )
    rows = []
    for k in res.motifs:
        v = zo[k][np.isfinite(zo[k])]
        rows.append(
            {
                "motif": k,
                "n_networks": n_ok,
                "n_defined": int(v.size),
                "median_z": float(np.median(v)) if v.size else math.nan,
                "frac_positive": float(np.mean(v > 0)) if v.size else math.nan,
                "frac_negative": float(np.mean(v < 0)) if v.size else math.nan,
                "levels": levels,
                "rule": rule,
                "null": null,
                "basis": basis,
            }
        )
    return rows
