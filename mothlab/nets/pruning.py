"""Magnitude pruning with nested masks (SCIENCE.md §3, without defects 1-3 of §5).

Counting rule (stated once, used everywhere): at sparsity ``s`` a layer of ``n`` weights keeps
exactly ``n - floor(s·n + 1/2)`` weights (``s·n`` rounded half up). Biases follow the same rule
with their own count when ``bias_pruning="magnitude"``. Global pruning applies it to the total
weight count of a network.

Nesting: the new mask keeps the top-k magnitudes *among the weights that survive the old mask*,
so ``new ⊆ old`` always and a pruned weight never returns. Ties are broken by position (a stable
sort), so the kept count is exact.

``as_published=True`` reproduces the original code on purpose: masks from raw weights, not
intersected with the old mask (defect 2), and bias masks thresholded with the layer's weight
cutoff (defect 1).

All functions here act on one network (no leading axis) and are vmapped by the caller.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax


def n_pruned(n: int, sparsity: float) -> int:
    """Entries pruned out of ``n`` at ``sparsity``: ``floor(s·n + 1/2)``."""
    return int(math.floor(sparsity * n + 0.5))


def n_kept(n: int, sparsity: float) -> int:
    """Entries kept out of ``n`` at ``sparsity``: ``n - n_pruned(n, s)``."""
    return n - n_pruned(n, sparsity)


def _topk_mask(score, k: int):
    """Boolean mask (shape of ``score``) of the ``k`` largest entries (stable tie break)."""
    flat = score.reshape(-1)
    if k >= flat.size:
        return jnp.ones(score.shape, bool)
    if k <= 0:
        return jnp.zeros(score.shape, bool)
    order = jnp.argsort(-flat, stable=True)
    keep = jnp.zeros(flat.shape, bool).at[order[:k]].set(True)
    return keep.reshape(score.shape)


def _score(x, mask, nested: bool):
    # surviving entries score |x| >= 0; pruned ones -1, so top-k never picks them while k <= alive
    a = jnp.abs(x)
    return jnp.where(mask, a, -1.0) if nested else a


def prune_network(params, masks, sparsity: float, *, mode: str = "layerwise",
                  bias_pruning: str = "magnitude", as_published: bool = False):
    """New masks of one network at ``sparsity`` (a Python float: counts are static).

    params, masks : dicts ``{"w": [(n_in, n_out)...], "b": [(n_out,)...]}`` (float / bool)
    Returns masks of the same structure, with exactly :func:`n_kept` weights per layer
    (layerwise) or in total (global).
    """
    nested = not as_published
    ws, bs = params["w"], params["b"]
    new_w = []
    if mode == "layerwise":
        for w, m in zip(ws, masks["w"]):
            new_w.append(_topk_mask(_score(w, m, nested), n_kept(w.size, sparsity)))
    elif mode == "global":
        scores = [_score(w, m, nested).reshape(-1) for w, m in zip(ws, masks["w"])]
        total = sum(s.size for s in scores)
        keep = _topk_mask(jnp.concatenate(scores), n_kept(total, sparsity))
        off = 0
        for w in ws:
            new_w.append(keep[off:off + w.size].reshape(w.shape))
            off += w.size
    else:
        raise ValueError(f"unknown pruning mode {mode!r}; choose layerwise or global.")

    new_b = []
    for w, b, mb, mw in zip(ws, bs, masks["b"], new_w):
        if bias_pruning == "none":
            new_b.append(mb)
        elif as_published:
            # defect 1: the layer's *weight* cutoff applied to its biases
            cutoff = jnp.min(jnp.where(mw, jnp.abs(w), jnp.inf))
            new_b.append(jnp.abs(b) >= cutoff)
        elif bias_pruning == "magnitude":
            new_b.append(_topk_mask(_score(b, mb, nested), n_kept(b.size, sparsity)))
        else:
            raise ValueError(f"unknown bias_pruning {bias_pruning!r}; choose magnitude or none.")
    return {"w": new_w, "b": new_b}


def prune_ensemble(params, masks, sparsity: float, **kw):
    """:func:`prune_network` over the leading network axis."""
    return jax.vmap(lambda p, m: prune_network(p, m, sparsity, **kw))(params, masks)


def reset_pruned_state(optimizer: optax.GradientTransformation, opt_state, masks):
    """Zero the optimizer state (Adam/RMSprop moments, …) of pruned entries.

    Uses :func:`optax.tree_utils.tree_map_params`, so it works for any optax optimizer whose
    state holds parameter-shaped trees; counters and other scalars are left as they are. With
    zero moments and zero (masked) gradients, Adam's update of a pruned weight is exactly 0.
    """
    return optax.tree_utils.tree_map_params(
        optimizer, lambda s, m: jnp.where(m, s, jnp.zeros((), s.dtype)), opt_state, masks,
        transform_non_params=lambda s: s)
