"""Sparsity analyses of a train-and-prune experiment (Figs 2–5 and Table 1 of the first paper).

Functions take an :class:`~mothlab.nets.Experiment` (or its path) and return plain numpy data:

- :func:`loss_table` — loss versus sparsity per network and its distribution per level (Fig 2–4);
- :func:`optimal_counts` — how many networks are optimally sparse at each level (Fig 4);
- :func:`remaining_weights` — weights left per layer at the optimal level, mean and variance
  over networks (Table 1);
- :func:`input_connectivity` — connections from each input variable to hidden layer 1 (Fig 5);
- :func:`ghost_dead_nodes` — hidden nodes with no input (ghost) or no output (dead);
- :func:`breakdown_level` — where performance breaks down (median loss back over the threshold).
"""

from __future__ import annotations

import numpy as np


def _exp(exp_or_path):
    if isinstance(exp_or_path, str) or hasattr(exp_or_path, "__fspath__"):
        from mothlab.nets import load_experiment
        return load_experiment(exp_or_path)
    return exp_or_path


def _threshold(exp, threshold):
    t = float(exp.config.threshold if threshold is None else threshold)
    if not t > 0:
        raise ValueError(f"threshold must be > 0 (a scaled MSE, paper: 1e-3), got {threshold}.")
    return t


def loss_table(exp, which: str = "test") -> dict:
    """Loss versus sparsity: ``{"sparsity" (L,), "loss" (L, n), "median", "q25", "q75", "min",
    "max" (L,), "which", "levels_done"}`` (NaN for levels not done)."""
    exp = _exp(exp)
    if which not in ("test", "val", "train"):
        raise ValueError(f"which must be 'test', 'val' or 'train', got {which!r}.")
    loss = np.asarray(getattr(exp, f"{which}_loss"), float)
    out = {"sparsity": np.asarray(exp.sparsity_levels, float), "loss": loss, "which": which,
           "levels_done": exp.levels_done}
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for name, fn in (("median", np.nanmedian), ("min", np.nanmin), ("max", np.nanmax)):
                out[name] = fn(loss, axis=1)
            out["q25"] = np.nanpercentile(loss, 25, axis=1)
            out["q75"] = np.nanpercentile(loss, 75, axis=1)
    return out


def optimal_counts(exp, threshold: float | None = None) -> dict:
    """``{"sparsity" (L,), "count" (L,) networks optimally sparse at each level, "none" (networks
    whose dense level already fails), "optimal_level" (n,)}``."""
    exp = _exp(exp)
    t = _threshold(exp, threshold)
    opt = np.asarray(exp.optimal_level(t))
    L = len(exp.sparsity_levels)
    count = np.bincount(opt[opt >= 0], minlength=L)[:L]
    return {"sparsity": np.asarray(exp.sparsity_levels, float), "count": count,
            "none": int((opt < 0).sum()), "optimal_level": opt, "threshold": t}


def remaining_weights(exp, levels=None, threshold: float | None = None) -> dict:
    """Table 1: weights left per layer.

    ``levels``: None → each network at its optimal level (networks without one are left out);
    an int → all networks at that level; an array (n,) → per network.
    Returns ``{"layers" ["10→400", ...], "total" (n_layers,), "mean", "var", "min", "max"
    (n_layers,), "counts" (n_used, n_layers), "networks" (n_used,) indices}``.
    """
    exp = _exp(exp)
    n = exp.n_networks
    if levels is None:
        lv = np.asarray(exp.optimal_level(_threshold(exp, threshold)))
    elif np.isscalar(levels):
        lv = np.full(n, int(levels))
    else:
        lv = np.asarray(levels, int)
        if lv.shape != (n,):
            raise ValueError(f"levels must be None, an int or an array of {n} level indices.")
    used = np.flatnonzero(lv >= 0)
    sizes = exp.layer_sizes
    n_layers = len(sizes) - 1
    counts = np.zeros((len(used), n_layers), np.int64)
    for level in np.unique(lv[used]):
        rows = np.flatnonzero(lv[used] == level)
        masks = exp.masks(int(level))
        for l in range(n_layers):
            counts[rows, l] = masks[l][used[rows]].sum(axis=(1, 2))
    f = (lambda fn: fn(counts, axis=0).astype(float)) if len(used) else \
        (lambda fn: np.full(n_layers, np.nan))
    return {"layers": [f"{a}→{b}" for a, b in zip(sizes[:-1], sizes[1:])],
            "total": np.array([a * b for a, b in zip(sizes[:-1], sizes[1:])]),
            "mean": f(np.mean), "var": f(np.var), "min": f(np.min), "max": f(np.max),
            "counts": counts, "networks": used}


def input_connectivity(exp, level) -> np.ndarray:
    """Connections from each input variable to hidden layer 1: (n_networks, 10) int.

    ``level``: an int (all networks at that level), ``"optimal"`` (each network at its optimal
    level; rows of networks without one are −1) or an array (n,) of level indices.
    Input order is :data:`mothlab.data.INPUT_NAMES` (ẋ₀, ẏ₀, φ₀, θ₀, φ̇₀, θ̇₀, x_f, y_f, φ_f, θ_f).
    """
    exp = _exp(exp)
    n = exp.n_networks
    if isinstance(level, str):
        if level != "optimal":
            raise ValueError(f"level must be an int, 'optimal' or an array; got {level!r}.")
        lv = np.asarray(exp.optimal_level())
    elif np.isscalar(level):
        lv = np.full(n, int(level))
    else:
        lv = np.asarray(level, int)
    out = np.full((n, exp.layer_sizes[0]), -1, np.int64)
    for lvl in np.unique(lv[lv >= 0]):
        rows = np.flatnonzero(lv == lvl)
        m0 = exp.masks(int(lvl))[0]
        out[rows] = m0[rows].sum(axis=2)
    return out


def _fallback_prune_ghost_dead(masks, biases=None):
    ms = [np.asarray(m, bool).copy() for m in masks]
    bs = None if biases is None else [np.asarray(b, bool).copy() for b in biases]
    while True:
        changed = False
        for l in range(1, len(ms)):  # hidden layer l sits between ms[l-1] and ms[l]
            has_in = ms[l - 1].any(axis=-2)
            if bs is not None:
                has_in = has_in | bs[l - 1]
            has_out = ms[l].any(axis=-1)
            alive = has_in & has_out
            if (~alive & (ms[l - 1].any(axis=-2) | has_out)).any():
                changed = True
            ms[l - 1] &= alive[..., None, :]
            ms[l] &= alive[..., :, None]
            if bs is not None:
                bs[l - 1] &= alive
        if not changed:
            return ms, bs


def ghost_dead_nodes(masks, biases=None) -> dict:
    """Ghost (no input) and dead (no output) hidden nodes.

    masks : list of bool (n_networks, n_l, n_{l+1}) (or without the network axis)
    biases : optional list of bias masks (a node fed by its bias alone is not a ghost)

    Returns ``{"ghost": [...], "dead": [...], "removed": [...]}``, one bool array
    (n_networks, width) per hidden layer: ghost/dead as seen in the masks, and every node removed
    by iterating the removal to a fixed point (uses
    :func:`mothlab.analysis.motifs.prune_ghost_dead`), plus ``"n_removed"`` (n_networks,).
    """
    try:
        from mothlab.analysis.motifs import prune_ghost_dead
    except ImportError:  # pragma: no cover - the motif module is optional at this layer
        prune_ghost_dead = _fallback_prune_ghost_dead
    ms = [np.asarray(m, bool) for m in masks]
    bs = None if biases is None else [np.asarray(b, bool) for b in biases]
    ghost, dead, removed = [], [], []
    pm, _ = prune_ghost_dead(ms, bs)
    pm = [np.asarray(m, bool) for m in pm]
    for l in range(1, len(ms)):
        has_in = ms[l - 1].any(axis=-2)
        if bs is not None:
            has_in = has_in | bs[l - 1]
        has_out = ms[l].any(axis=-1)
        ghost.append(~has_in)
        dead.append(~has_out)
        # after the fixed point a removed node has no edge left; a live one keeps its outputs
        alive = pm[l - 1].any(axis=-2) | pm[l].any(axis=-1)
        removed.append(~alive)
    n_removed = sum(r.sum(axis=-1) for r in removed) if removed else 0
    return {"ghost": ghost, "dead": dead, "removed": removed, "n_removed": n_removed}


def breakdown_level(exp, threshold: float | None = None, which: str = "test") -> int:
    """Where performance breaks down: the first level after the level of lowest median loss
    whose median loss is at or above the threshold (−1 if none).

    Counting from the minimum (not from the dense level) keeps the answer meaningful when the
    dense networks are still undertrained and improve during the first retraining levels.
    """
    exp = _exp(exp)
    t = _threshold(exp, threshold)
    med = loss_table(exp, which)["median"][: exp.levels_done]
    if not np.isfinite(med).any():
        return -1
    best = int(np.nanargmin(med))
    bad = np.flatnonzero(~(med[best + 1:] < t))
    return int(best + 1 + bad[0]) if bad.size else -1
