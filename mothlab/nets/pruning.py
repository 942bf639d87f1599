"""Magnitude pruning with nested masks (SCIENCE.md §3, without defects 1-3 of §5).

Counting rule (stated once, used everywhere): at sparsity ``s`` a layer of ``n`` weights keeps
exactly ``n - floor(s·n + 1/2)`` weights (``s·n`` rounded half up). Biases follow the same rule
with their own count when ``bias_pruning="magnitude"``. Global pruning applies it to the total
weight count of a network.

Nesting: the new mask keeps the top-k magnitudes *among the weights that survive the old mask*,
so ``new ⊆ old`` always and a pruned weight never returns. Ties are broken by position (a stable
sort), so the kept count is exact.

``as_published=True`` reproduces the original code on purpose: masks from raw weights, not
intersected with the old mask (defect 2), and the layer's *weight* cutoff applied to its biases
(defect 1). The cutoff is the magnitude of the weakest weight the exact rule keeps, and the
original kept entries strictly above it: so weights keep one fewer than the exact rule (when
magnitudes do not tie) and every bias smaller than the cutoff vanishes — most of them at the first
(15 %) pruning step, since trained biases are small. The dense level (sparsity 0) prunes nothing,
as in the original, where pruning began at the first level above 0.

Per network, the functions here act on one network (no leading axis) and are vmapped by the
caller. :class:`Topology` is the strategy that decides, level by level, which masks a run trains:
:class:`MagnitudePruning` here (the paper's method), the sparse-from-the-start methods in
:mod:`mothlab.nets.sparse`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax

from . import mlp


def n_pruned(n: int, sparsity: float) -> int:
    """Entries pruned out of ``n`` at ``sparsity``: ``floor(s·n + 1/2)``."""
    return int(math.floor(sparsity * n + 0.5))


def n_kept(n: int, sparsity: float) -> int:
    """Entries kept out of ``n`` at ``sparsity``: ``n - n_pruned(n, s)``."""
    return n - n_pruned(n, sparsity)


def _topk_mask(score, k):
    """Boolean mask (shape of ``score``) of the ``k`` largest entries (stable tie break).

    ``k`` may be a Python int or a traced integer: the count is data, not part of the compiled
    program, so one compiled pruning step serves every sparsity of a schedule."""
    flat = score.reshape(-1)
    if isinstance(k, int):
        if k >= flat.size:
            return jnp.ones(score.shape, bool)
        if k <= 0:
            return jnp.zeros(score.shape, bool)
    order = jnp.argsort(-flat, stable=True)
    keep = jnp.zeros(flat.shape, bool).at[order].set(jnp.arange(flat.size) < k)
    return keep.reshape(score.shape)


def _counts(params, sparsity: float, lead: int = 0) -> dict:
    """Entries each layer keeps at ``sparsity`` (:func:`n_kept`): ``{"w": [...], "b": [...],
    "total": k}`` as Python ints, from the shapes of ``params`` after ``lead`` leading axes."""

    def size(a):
        return int(math.prod(a.shape[lead:]))

    return {
        "w": [n_kept(size(w), sparsity) for w in params["w"]],
        "b": [n_kept(size(b), sparsity) for b in params["b"]],
        "total": n_kept(sum(size(w) for w in params["w"]), sparsity),
    }


def _score(x, mask, nested: bool):
    # surviving entries score |x| >= 0; pruned ones -1, so top-k never picks them while k <= alive
    a = jnp.abs(x)
    return jnp.where(mask, a, -1.0) if nested else a


def prune_network(
    params,
    masks,
    sparsity: float,
    *,
    mode: str = "layerwise",
    bias_pruning: str = "magnitude",
    as_published: bool = False,
):
    """New masks of one network at ``sparsity`` (a Python float: counts are static).

    params, masks : dicts ``{"w": [(n_in, n_out)...], "b": [(n_out,)...]}`` (float / bool)
    Returns masks of the same structure, with exactly :func:`n_kept` weights per layer
    (layerwise) or in total (global).
    """
    return _prune_network_counts(
        params,
        masks,
        _counts(params, sparsity),
        dense=sparsity <= 0.0,
        mode=mode,
        bias_pruning=bias_pruning,
        as_published=as_published,
    )


def _prune_network_counts(
    params, masks, counts, *, dense: bool, mode: str, bias_pruning: str, as_published: bool
):
    """:func:`prune_network` with the kept counts given (:func:`_counts`; ints or traced)."""
    nested = not as_published
    ws, bs = params["w"], params["b"]
    if as_published and dense:
        return masks  # the original pruned nothing at the dense level
    new_w = []
    if mode == "layerwise":
        for w, m, k in zip(ws, masks["w"], counts["w"]):
            new_w.append(_topk_mask(_score(w, m, nested), k))
    elif mode == "global":
        scores = [_score(w, m, nested).reshape(-1) for w, m in zip(ws, masks["w"])]
        keep = _topk_mask(jnp.concatenate(scores), counts["total"])
        off = 0
        for w in ws:
            new_w.append(keep[off : off + w.size].reshape(w.shape))
            off += w.size
    else:
        raise ValueError(f"unknown pruning mode {mode!r}; choose layerwise or global.")

    new_b = []
    if as_published:
        # the original's cutoff: the weakest kept magnitude, and only entries strictly above it
        # survive (weights: one fewer than the exact rule; biases: defect 1)
        cutoffs = [jnp.min(jnp.where(mw, jnp.abs(w), jnp.inf)) for w, mw in zip(ws, new_w)]
        new_w = [mw & (jnp.abs(w) > c) for w, mw, c in zip(ws, new_w, cutoffs)]
    for l, (b, mb) in enumerate(zip(bs, masks["b"])):
        if bias_pruning == "none":
            new_b.append(mb)
        elif as_published:
            new_b.append(jnp.abs(b) > cutoffs[l])
        elif bias_pruning == "magnitude":
            new_b.append(_topk_mask(_score(b, mb, nested), counts["b"][l]))
        else:
            raise ValueError(f"unknown bias_pruning {bias_pruning!r}; choose magnitude or none.")
    return {"w": new_w, "b": new_b}


def prune_ensemble(
    params,
    masks,
    sparsity: float,
    *,
    mode: str = "layerwise",
    bias_pruning: str = "magnitude",
    as_published: bool = False,
):
    """:func:`prune_network` over the leading network axis; compiled once for every sparsity
    (the kept counts are data)."""
    counts = jax.tree.map(
        lambda k: jnp.asarray(k, jnp.int32), _counts(params, float(sparsity), lead=1)
    )
    dense = bool(as_published) and float(sparsity) <= 0.0
    return _prune_ensemble(params, masks, counts, dense, mode, bias_pruning, bool(as_published))


@partial(jax.jit, static_argnames=("dense", "mode", "bias_pruning", "as_published"))
def _prune_ensemble(params, masks, counts, dense, mode, bias_pruning, as_published):
    return jax.vmap(
        lambda p, m: _prune_network_counts(
            p,
            m,
            counts,
            dense=dense,
            mode=mode,
            bias_pruning=bias_pruning,
            as_published=as_published,
        )
    )(params, masks)


def reset_pruned_state(optimizer: optax.GradientTransformation, opt_state, masks):
    """Zero the optimizer state (Adam/RMSprop moments, …) of pruned entries.

    Uses :func:`optax.tree_utils.tree_map_params`, so it works for any optax optimizer whose
    state holds parameter-shaped trees; counters and other scalars are left as they are. With
    zero moments and zero (masked) gradients, Adam's update of a pruned weight is exactly 0.
    """
    return optax.tree_utils.tree_map_params(
        optimizer,
        lambda s, m: jnp.where(m, s, jnp.zeros((), s.dtype)),
        opt_state,
        masks,
        transform_non_params=lambda s: s,
    )


def prune_state(state, sparsity: float, mode: str, bias_pruning: str, settings):
    """Prune every network of ``state`` (dict params, masks, opt) to ``sparsity``; zero pruned
    weights and their optimizer state (unless ``settings.as_published``, which keeps raw weights
    and stale moments: defects 2-3). ``settings`` is hashable and has ``opt`` (an optax
    transformation) and ``as_published`` (:class:`mothlab.nets.training.TrainSettings`).

    The kept counts enter the compiled step as data, so a whole schedule compiles it once (it
    compiled once per level before: 17 compiles of 0.5-1.5 s each on the 2-core CPU)."""
    counts = jax.tree.map(
        lambda k: jnp.asarray(k, jnp.int32), _counts(state["params"], float(sparsity), lead=1)
    )
    # `dense` only matters as published (the original pruned nothing at sparsity 0); otherwise
    # the counts alone say it, and one compiled step serves the dense level too
    dense = settings.as_published and float(sparsity) <= 0.0
    return _prune_state(state, counts, dense, mode, bias_pruning, settings)


@partial(jax.jit, static_argnames=("dense", "mode", "bias_pruning", "settings"))
def _prune_state(state, counts, dense: bool, mode: str, bias_pruning: str, settings):
    masks = jax.vmap(
        lambda p, m: _prune_network_counts(
            p,
            m,
            counts,
            dense=dense,
            mode=mode,
            bias_pruning=bias_pruning,
            as_published=settings.as_published,
        )
    )(state["params"], state["masks"])
    params, opt_state = state["params"], state["opt"]
    if not settings.as_published:
        params = mlp.apply_masks(params, masks)
        opt_state = reset_pruned_state(settings.opt, opt_state, masks)
    return dict(state, params=params, masks=masks, opt=opt_state)


# ---------------------------------------------------------------------------- topology strategy
#: Extra topologies by ``config.method`` name: ``{name: factory(config, settings) -> Topology}``.
#: :mod:`mothlab.nets.sparse` registers its methods here when imported (see
#: :func:`register_topology`); ``"prune"`` is built in.
TOPOLOGIES: dict[str, Callable] = {}


class Topology:
    """Which masks a run trains, level by level: the strategy seam of the experiment runner.

    The runner (:mod:`mothlab.nets.experiment`) calls, for each level ``i``:
    ``state = before_level(state, i, key)`` once, then trains in compiled chunks and after each
    chunk calls ``during_level(state, step, grads_fn)``; a returned state replaces the current
    one (e.g. SET/RigL mask updates), None leaves it. Every finished level is stored with its
    masks, so a method that changes its topology stores each update as a level.

    ``state`` is a dict ``{"params", "masks", "opt"}`` with a leading network axis (see
    :mod:`mothlab.nets.mlp`); ``key`` is (n_networks, 2) uint32, one key per network and level;
    ``step`` is the number of batches the level has run; ``grads_fn(state)`` returns the gradient
    of the training loss on one batch with respect to every weight as if unmasked (RigL's growth
    signal), with the structure of ``state["params"]``.
    """

    #: Number of levels the run stores.
    n_levels: int = 0

    def label(self, i: int) -> float:
        """Sparsity (fraction of weights pruned) of level ``i``."""
        raise NotImplementedError

    def before_level(self, state, i: int, key):
        return state

    def during_level(self, state, step: int, grads_fn):
        return None


class MagnitudePruning(Topology):
    """The paper's sequential magnitude pruning: before level ``i`` prune to ``schedule[i]``
    (nested masks, exact counts, pruned optimizer state zeroed; see :func:`prune_state`)."""

    def __init__(
        self, schedule, mode: str = "layerwise", bias_pruning: str = "magnitude", settings=None
    ):
        self.schedule = [float(s) for s in schedule]
        self.n_levels = len(self.schedule)
        self.mode = mode
        self.bias_pruning = bias_pruning
        self.settings = settings

    def label(self, i: int) -> float:
        return self.schedule[i]

    def before_level(self, state, i: int, key):
        return prune_state(state, self.schedule[i], self.mode, self.bias_pruning, self.settings)


def register_topology(name: str, factory: Callable) -> None:
    """Make ``config.method == name`` build ``factory(config, settings)`` (a :class:`Topology`)."""
    TOPOLOGIES[name] = factory


def make_topology(config, settings) -> Topology:
    """The :class:`Topology` that ``config.method`` names (``"prune"``: :class:`MagnitudePruning`
    over ``config.schedule``)."""
    method = getattr(config, "method", "prune")
    if method != "prune" and method not in TOPOLOGIES:
        from . import sparse  # noqa: F401  (registers static, set, rigl, motif, anti-motif)
    if method == "prune":
        return MagnitudePruning(
            config.sparsity_levels, config.pruning, config.bias_pruning, settings
        )
    if method not in TOPOLOGIES:
        raise ValueError(
            f"method {method!r} has no topology registered; available: "
            f"{sorted(['prune', *TOPOLOGIES])} (sparse methods come with "
            "mothlab.nets.sparse)."
        )
    return TOPOLOGIES[method](config, settings)
