"""Sparse training from the start: static random masks, SET and RigL, one mask per network.

Methods (SCIENCE.md §7), chosen by ``ExperimentConfig.method``:

``prune``       today's default: train dense, then sequential magnitude pruning (nets.pruning).
``static``      a random mask at the target density, fixed for the whole training.
``set``         Sparse Evolutionary Training (Mocanu et al. 2018): every ``update_every`` steps each
                layer drops the fraction ζ of its live weights closest to zero and regrows as many
                at random among the cells that were not live.
``rigl``        RigL (Evci et al. 2020): drop by magnitude, regrow where the *dense* gradient
                magnitude is largest; the update fraction decays as ``ζ/2 (1 + cos(π t / T_end))``
                and updates stop at ``T_end = stop_fraction × total steps``.
``motif``       a mask whose motif z-scores match a target profile (made by
                :mod:`mothlab.analysis.topology`, a layer above), then trained like ``static``.
``anti-motif``  the reverse control: a mask with the opposite profile.

Counting rule: a layer of ``n`` weights at density ``d`` keeps exactly ``n_kept(n, 1 - d)`` weights
(:func:`mothlab.nets.pruning.n_kept`, the same rule pruning uses, so ``prune`` at sparsity ``1 - d``
and every method here end with the same number of weights per layer under ``uniform`` allocation).
Every update drops and regrows the same number of weights per layer, so the count stays exact.

Regrown weights start at exactly 0 and their optimizer state (Adam's moments, …) is reset to 0
(:func:`reset_entries`), as RigL prescribes; dropped weights are masked and their state zeroed too.

Independence: every random choice of network ``i`` (its mask, its batches, its regrowth) comes from
its own key ``fold_in(PRNGKey(seed), i)``, so a network's result depends only on its seed and the
config, never on the networks trained beside it. All functions act on ensembles with the network
axis first: weight layers ``(n_networks, n_in, n_out)``.

Imports stay downward: this module knows nothing of motifs. A motif-guided start is a plain list of
bool masks handed in by the caller (``initial_masks=`` of :func:`sparse_init`, or the
``mask_fn`` callable of :class:`SparseTopology`), built by :mod:`mothlab.analysis.topology`.

>>> import numpy as np
>>> layer_counts([10, 8, 7], 0.5)
[40, 28]
>>> [round(d, 3) for d in layer_densities([64, 32, 10], 0.2, "erdos-renyi")]
[0.161, 0.45]
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import mlp
from .config import ExperimentConfig
from .pruning import n_kept

METHODS = tuple(ExperimentConfig.param.method.objects)
"""Training methods (owned by the ``ExperimentConfig.method`` declaration)."""
DYNAMIC = ("set", "rigl")
"""Methods that change the mask during training."""
ALLOCATIONS = tuple(ExperimentConfig.param.allocation.objects)
"""How a total density is spread over layers."""


# ------------------------------------------------------------------------------------ densities
def layer_densities(layer_sizes, density: float, allocation: str = "uniform") -> list[float]:
    """Density of each weight layer for an overall ``density`` (fraction of weights kept).

    ``uniform``: every layer at ``density``. ``erdos-renyi`` (Mocanu et al.; Evci et al.):
    ``d_l = ε (n_in + n_out) / (n_in n_out)``, with ``ε`` chosen so the network keeps ``density``
    of all its weights; a layer that would exceed 1 is made dense and ``ε`` is solved again for the
    others (RigL's rule), so small layers (the output layer) stay well connected.
    """
    if not (0.0 < density <= 1.0) or math.isnan(density):
        raise ValueError(
            f"density must be in (0, 1] (fraction of weights kept), got {density}; "
            "e.g. 0.1 keeps 10 % of each layer."
        )
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}.")
    sizes = [int(s) for s in layer_sizes]
    shapes = list(zip(sizes[:-1], sizes[1:]))
    if allocation == "uniform":
        return [float(density)] * len(shapes)
    n = np.array([a * b for a, b in shapes], float)
    raw = np.array([(a + b) / (a * b) for a, b in shapes], float)
    dense = np.zeros(len(shapes), bool)
    budget = density * n.sum()
    for _ in range(len(shapes) + 1):
        eps = (budget - n[dense].sum()) / max((raw * n)[~dense].sum(), 1e-300)
        d = np.where(dense, 1.0, eps * raw)
        over = (d > 1.0) & ~dense
        if not over.any():
            break
        dense |= over
    return [float(min(1.0, x)) for x in d]


def layer_counts(layer_sizes, density: float, allocation: str = "uniform") -> list[int]:
    """Weights kept per layer: ``n_kept(n_l, 1 - d_l)`` (the pruning counting rule)."""
    sizes = [int(s) for s in layer_sizes]
    ds = layer_densities(sizes, density, allocation)
    out = []
    for (a, b), d in zip(zip(sizes[:-1], sizes[1:]), ds):
        k = n_kept(a * b, 1.0 - d)
        out.append(max(1, k))
    return out


# ------------------------------------------------------------------------------------ masks
def _ranks(score):
    """Rank of every entry of ``score`` (0 = smallest), stable ties; same shape, int32."""
    flat = score.reshape(-1)
    order = jnp.argsort(flat, stable=True)
    return (
        jnp.zeros(flat.shape, jnp.int32)
        .at[order]
        .set(jnp.arange(flat.size, dtype=jnp.int32))
        .reshape(score.shape)
    )


def random_mask(key, shape, k: int):
    """One bool mask of ``shape`` with exactly ``k`` True cells, uniform over such masks."""
    return _ranks(jax.random.uniform(key, shape)) < k


def random_masks(keys, layer_sizes, counts) -> list:
    """Random masks of an ensemble: one bool ``(n_networks, n_in, n_out)`` per layer.

    ``keys`` (n_networks, 2): network keys; layer ``l`` of network ``i`` uses
    ``fold_in(fold_in(key_i, 7), l)``, so it depends on that network only. ``counts``: exact True
    cells per layer (e.g. :func:`layer_counts`).
    """
    sizes = [int(s) for s in layer_sizes]
    out = []
    for l, ((a, b), k) in enumerate(zip(zip(sizes[:-1], sizes[1:]), counts)):

        def one(key, a=a, b=b, k=int(k), l=l):
            return random_mask(jax.random.fold_in(jax.random.fold_in(key, 7), l), (a, b), k)

        out.append(jax.vmap(one)(keys))
    return out


def check_masks(masks, layer_sizes, counts, n_networks: int):
    """Refuse externally made masks that do not fit: shapes, dtype and exact counts per layer."""
    sizes = [int(s) for s in layer_sizes]
    if len(masks) != len(sizes) - 1:
        raise ValueError(
            f"got {len(masks)} mask layers, the network has {len(sizes) - 1} weight "
            f"layers (layer sizes {sizes})."
        )
    out = []
    for l, (m, a, b, k) in enumerate(zip(masks, sizes[:-1], sizes[1:], counts)):
        m = np.asarray(m)
        if m.shape != (n_networks, a, b):
            raise ValueError(f"mask layer {l} has shape {m.shape}, expected {(n_networks, a, b)}.")
        m = m.astype(bool)
        got = m.reshape(n_networks, -1).sum(1)
        if not np.all(got == k):
            raise ValueError(
                f"mask layer {l} keeps {sorted(set(got.tolist()))} weights per "
                f"network, expected exactly {k} (density rule of nets.sparse)."
            )
        out.append(jnp.asarray(m))
    return out


# ------------------------------------------------------------------------------------ updates
def drop_regrow(w, mask, grow_score, n_update):
    """One layer of one network: drop ``n_update`` live weights of smallest ``|w|``, regrow
    ``n_update`` cells that were not live, those of largest ``grow_score``.

    ``n_update`` may be a traced integer; it is clipped to ``min(live, dead)`` so the live count is
    unchanged. Returns ``(new_mask, grown)`` (bool, shape of ``w``); ``grown`` marks cells that
    were not live before (they must start at weight 0 with fresh optimizer state).
    """
    live = jnp.sum(mask)
    n_update = jnp.clip(n_update, 0, jnp.minimum(live, mask.size - live)).astype(jnp.int32)
    dropped = mask & (_ranks(jnp.where(mask, jnp.abs(w), jnp.inf)) < n_update)
    grown = ~mask & (_ranks(jnp.where(mask, jnp.inf, -grow_score)) < n_update)
    return (mask & ~dropped) | grown, grown


def set_update(key, params, masks, zeta: float):
    """SET update of one network (no leading axis): per layer drop ``round(ζ · live)`` smallest
    weights, regrow as many uniformly at random. Returns ``(new_w_masks, grown)``."""
    new, grown = [], []
    for l, (w, m) in enumerate(zip(params["w"], masks["w"])):
        k = jnp.round(zeta * jnp.sum(m)).astype(jnp.int32)
        g = jax.random.uniform(jax.random.fold_in(key, l), w.shape)
        nm, gr = drop_regrow(w, m, g, k)
        new.append(nm)
        grown.append(gr)
    return new, grown


def rigl_update(key, params, masks, dense_grads, fraction):
    """RigL update of one network: drop ``round(f · live)`` smallest weights, regrow where
    ``|dense gradient|`` is largest (random tie break). ``fraction`` may be traced."""
    new, grown = [], []
    for l, (w, m, g) in enumerate(zip(params["w"], masks["w"], dense_grads["w"])):
        k = jnp.round(fraction * jnp.sum(m)).astype(jnp.int32)
        tie = jax.random.uniform(jax.random.fold_in(key, l), w.shape) * 1e-30
        nm, gr = drop_regrow(w, m, jnp.abs(g) + tie, k)
        new.append(nm)
        grown.append(gr)
    return new, grown


def rigl_fraction(step, total_steps: int, zeta: float, stop_fraction: float):
    """RigL's cosine-decayed update fraction at ``step``: ``ζ/2 (1 + cos(π t / T_end))`` before
    ``T_end = stop_fraction × total_steps``, 0 after."""
    t_end = max(1.0, stop_fraction * total_steps)
    t = jnp.asarray(step, jnp.float32)
    return jnp.where(t < t_end, 0.5 * zeta * (1.0 + jnp.cos(jnp.pi * t / t_end)), 0.0)


def reset_entries(optimizer: optax.GradientTransformation, opt_state, keep):
    """Zero the optimizer state (any optax optimizer's parameter-shaped trees) where ``keep`` is
    False; counters and scalars are left as they are. ``keep`` has the structure of the params."""
    return optax.tree_utils.tree_map_params(
        optimizer,
        lambda s, k: jnp.where(k, s, jnp.zeros((), s.dtype)),
        opt_state,
        keep,
        transform_non_params=lambda s: s,
    )


def apply_topology(optimizer, params, opt_state, masks, new_w_masks, grown):
    """Install new weight masks on an ensemble: dropped and regrown weights become 0, their
    optimizer state is reset. Bias masks are unchanged. Returns ``(params, opt_state, masks)``."""
    masks = {"w": list(new_w_masks), "b": masks["b"]}
    keep = {"w": [nm & ~g for nm, g in zip(new_w_masks, grown)], "b": masks["b"]}
    params = mlp.apply_masks(params, keep)
    opt_state = reset_entries(optimizer, opt_state, keep)
    return params, opt_state, masks


# ------------------------------------------------------------------- degree-preserving updates
REGROW = ("free", "degrees")
"""Where SET/RigL regrow: anywhere (``free``, the papers) or keeping every node's degrees."""


def degree_regrow(mask, dropped, score, rng=None, swaps_per_edge: int = 30):
    """Cells to regrow in one layer of one network so that every node keeps its degree: each
    source row regains exactly as many edges as it lost, each target column too (numpy, bool).

    ``mask``: live before the update; ``dropped``: the live cells being dropped; ``score``:
    preference (SET: random; RigL: ``|dense gradient|``). First a greedy pass by ``score`` over
    the cells not live before: a cell is taken while its row and its column still lack edges.
    When that pass leaves a row short (its last candidates are live), the greedy result is
    discarded for an exact construction: start from the dropped cells themselves (which have
    the margins by definition) and move them by checkerboard swaps — ``(a, b), (a', b')`` →
    ``(a, b'), (a', b)`` when both new cells are free — each swap kept when it raises the total
    ``score`` (``swaps_per_edge`` proposals per regrown edge, from ``rng``). Either way the
    count and every node's fan-in and fan-out are exact. Returns ``grown`` (bool); a
    just-dropped cell regrown (possible in the second case) restarts at 0 like any other.
    """
    mask = np.asarray(mask, bool)
    dropped = np.asarray(dropped, bool) & mask
    score = np.asarray(score, float)
    r = dropped.sum(1).astype(np.int64)
    c = dropped.sum(0).astype(np.int64)
    n_col = mask.shape[1]
    grown = np.zeros_like(mask)
    idx = np.flatnonzero(~mask & (r[:, None] > 0) & (c[None, :] > 0))
    for f in idx[np.argsort(-score.ravel()[idx], kind="stable")]:
        a, b = divmod(int(f), n_col)
        if r[a] > 0 and c[b] > 0:
            grown[a, b] = True
            r[a] -= 1
            c[b] -= 1
    if not r.sum():
        return grown
    rng = np.random.default_rng(0) if rng is None else rng
    grown = dropped.copy()
    taken = mask.copy()  # live after the update: kept cells and the current regrown set
    rows, cols = (v.copy() for v in np.nonzero(grown))
    k = rows.size
    if k < 2:
        return grown
    for _ in range(swaps_per_edge * k):
        i, j = rng.integers(0, k, 2)
        a, b, a2, b2 = rows[i], cols[i], rows[j], cols[j]
        if a == a2 or b == b2 or taken[a, b2] or taken[a2, b]:
            continue
        if score[a, b2] + score[a2, b] <= score[a, b] + score[a2, b2]:
            continue
        taken[a, b] = taken[a2, b2] = False
        taken[a, b2] = taken[a2, b] = True
        cols[i], cols[j] = b2, b
    grown = np.zeros_like(mask)
    grown[rows, cols] = True
    return grown


def _host_rng(key) -> np.random.Generator:
    """A numpy generator from one network's JAX key (its update randomness, on the host)."""
    return np.random.default_rng([int(v) for v in np.asarray(key).ravel()])


def degree_update(keys, params, masks, fraction, grads=None):
    """A SET (``grads`` None: random preference) or RigL (``|grads|`` preference) update of an
    ensemble with degree-preserving regrowth (:func:`degree_regrow`), on the host.

    Per network and layer: drop ``round(fraction · live)`` live weights of smallest ``|w|``
    (stable ties, as :func:`drop_regrow`), regrow as many keeping every node's degrees.
    ``keys`` (n, 2): one update key per network (its own randomness only). Returns
    ``(new_w_masks, grown)`` as lists of bool ``(n, n_in, n_out)`` arrays.
    """
    w_all = [np.asarray(w) for w in params["w"]]
    m_all = [np.asarray(m, bool) for m in masks["w"]]
    g_all = None if grads is None else [np.asarray(g) for g in grads["w"]]
    keys = np.asarray(keys)
    new = [m.copy() for m in m_all]
    grown = [np.zeros_like(m) for m in m_all]
    for i in range(keys.shape[0]):
        rng = _host_rng(keys[i])
        for l, (w, m) in enumerate(zip(w_all, m_all)):
            mi = m[i]
            live = np.flatnonzero(mi)
            k = int(
                np.clip(round(float(fraction) * live.size), 0, min(live.size, mi.size - live.size))
            )
            noise = rng.random(mi.shape)
            if k == 0:
                continue
            order = live[np.argsort(np.abs(w[i]).ravel()[live], kind="stable")]
            dropped = np.zeros_like(mi)
            dropped.flat[order[:k]] = True
            score = noise if g_all is None else np.abs(g_all[l][i]) + 1e-30 * noise
            gr = degree_regrow(mi, dropped, score, rng)
            new[l][i] = (mi & ~dropped) | gr
            grown[l][i] = gr
    return new, grown


@partial(jax.jit, static_argnames=("settings",))
def _install_update(params, opt_state, masks, new_w_masks, grown, settings):
    params, opt_state, masks = apply_topology(
        settings.opt, params, opt_state, masks, new_w_masks, grown
    )
    return params, opt_state, masks


@partial(jax.jit, static_argnames=("settings",))
def _dense_grads(params, keys, steps, data, settings):
    """Every network's gradient of the training loss on one batch of its own (RigL's growth
    signal), as if no weight were masked (dead weights are 0, so the forward pass is the
    sparse one)."""
    xtr, ytr = data

    def one(p, key, step):
        idx = _batch(jax.random.fold_in(key, 4), step, xtr.shape[0], settings.batch_size)
        dense = {
            "w": [jnp.ones(w.shape, bool) for w in p["w"]],
            "b": [jnp.ones(b.shape, bool) for b in p["b"]],
        }
        return jax.grad(loss_fn)(p, dense, xtr[idx], ytr[idx], settings.activation, settings.loss)

    return jax.vmap(one)(params, keys, steps)


# ------------------------------------------------------------------------------------ training
LOSSES = ("mse", "xent")


def loss_fn(params, masks, x, y, activation: str, loss: str):
    """``mse`` (the paper's scaled MSE) or ``xent`` (softmax cross-entropy, ``y`` one-hot)."""
    if loss == "mse":
        return mlp.mse(params, masks, x, y, activation)
    logits = mlp.forward(params, masks, x, activation)
    return jnp.mean(optax.softmax_cross_entropy(logits, y))


@dataclass(frozen=True)
class SparseSettings:
    """Static settings of compiled sparse training (hashable: part of the jit cache key).

    ``total_steps`` is the run's length (RigL's schedule needs it); ``method`` one of
    :data:`METHODS` (``prune`` trains like ``static`` between its pruning steps). ``regrow``
    (:data:`REGROW`): ``"free"`` regrows anywhere (SET at random, RigL by gradient);
    ``"degrees"`` regrows so that every node keeps its fan-in and fan-out
    (:func:`degree_regrow`: the motif profile of a motif-guided start is kept through updates).
    """

    method: str = "static"
    activation: str = "arctan"
    optimizer: str = "adam"
    learning_rate: float = 5e-4
    batch_size: int = 128
    loss: str = "mse"
    update_every: int = 100
    zeta: float = 0.3
    rigl_stop: float = 0.75
    total_steps: int = 1000
    regrow: str = "free"

    @property
    def opt(self) -> optax.GradientTransformation:
        from .training import make_optimizer

        return make_optimizer(self.optimizer, self.learning_rate)


def sparse_init(
    keys, layer_sizes, settings: SparseSettings, counts, init: str = "paper", initial_masks=None
):
    """Ensemble state ``{"params", "masks", "opt", "step"}`` with weight masks at ``counts``.

    ``initial_masks`` (list of bool ``(n_networks, n_in, n_out)``, exact counts) replaces the
    random ones (a motif-guided start); bias masks are all True (sparse methods keep biases).
    Initial weights come from ``fold_in(key_i, 0)`` as in nets.training (same draws as a dense
    run), then masked. One compiled function (built once per shapes and settings: run eagerly,
    its dozens of small operations compiled one by one and took 44 s on a loaded 2-core CPU).
    """
    sizes = tuple(int(s) for s in layer_sizes)
    counts = tuple(int(k) for k in counts)
    n = keys.shape[0]
    masks = None if initial_masks is None else tuple(check_masks(initial_masks, sizes, counts, n))
    return _sparse_init(jnp.asarray(keys), masks, sizes, counts, settings, init)


@partial(jax.jit, static_argnames=("sizes", "counts", "settings", "init"))
def _sparse_init(keys, w_masks, sizes, counts, settings, init):
    params = mlp.init_ensemble(
        jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys), list(sizes), init
    )
    n = keys.shape[0]
    if w_masks is None:
        w_masks = random_masks(keys, sizes, counts)
    masks = {"w": list(w_masks), "b": [jnp.ones(b.shape, bool) for b in params["b"]]}
    params = mlp.apply_masks(params, masks)
    opt_state = jax.vmap(settings.opt.init)(params)
    return {"params": params, "masks": masks, "opt": opt_state, "step": jnp.zeros((n,), jnp.int32)}


def _batch(key, step, n_data, batch):
    return jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, n_data)


def train_steps(state, keys, data, n_steps: int, settings: SparseSettings):
    """``n_steps`` optimizer steps of every network (one ``lax.scan``), masks fixed.

    Network ``i``'s batch at its step ``k`` is drawn from ``fold_in(fold_in(key_i, 2), k)``.
    Returns ``(state, losses (n_steps, n))``. The compiled step does not depend on the method
    (one compilation serves static, SET, RigL and the motif starts).
    """
    return _train_steps(state, keys, data, int(n_steps), _plain(settings))


def _plain(settings: SparseSettings) -> SparseSettings:
    """``settings`` without what only topology updates read (method, ζ, schedule, regrowth):
    the key of compiled functions that do not depend on them, so one compilation serves every
    method."""
    return dataclasses.replace(
        settings,
        method="static",
        update_every=1,
        zeta=0.0,
        rigl_stop=0.0,
        total_steps=1,
        regrow="free",
    )


@partial(jax.jit, static_argnames=("n_steps", "settings"))
def _train_steps(state, keys, data, n_steps: int, settings: SparseSettings):
    xtr, ytr = data
    opt = settings.opt

    def one(params, opt_state, masks, key, step):
        idx = _batch(jax.random.fold_in(key, 2), step, xtr.shape[0], settings.batch_size)
        loss, grads = jax.value_and_grad(loss_fn)(
            params, masks, xtr[idx], ytr[idx], settings.activation, settings.loss
        )
        upd, new_opt = opt.update(grads, opt_state, params)
        return mlp.apply_masks(optax.apply_updates(params, upd), masks), new_opt, loss

    vone = jax.vmap(one)

    def body(st, _):
        p, o, loss = vone(st["params"], st["opt"], st["masks"], keys, st["step"])
        return dict(st, params=p, opt=o, step=st["step"] + 1), loss

    return jax.lax.scan(body, state, None, length=n_steps)


def topology_update(state, keys, data, settings: SparseSettings):
    """One SET or RigL update of every network at its current step (``static`` etc.: no-op).

    Network ``i``'s randomness comes from ``fold_in(fold_in(key_i, 3), step)`` and RigL's dense
    gradient from one batch of its own. Returns ``(state, n_grown (n, n_layers))``. With
    ``settings.regrow == "degrees"`` the regrowth keeps every node's degrees
    (:func:`degree_update`, on the host); otherwise one compiled update.
    """
    if settings.regrow not in REGROW:
        raise ValueError(f"regrow must be one of {REGROW}, got {settings.regrow!r}.")
    if settings.regrow == "free" or settings.method not in DYNAMIC:
        return _topology_update(state, keys, data, settings)
    steps = state["step"]
    ukeys = jax.vmap(lambda k, t: jax.random.fold_in(jax.random.fold_in(k, 3), t))(keys, steps)
    if settings.method == "set":
        fraction, grads = settings.zeta, None
    else:
        fraction = float(
            rigl_fraction(int(steps[0]), settings.total_steps, settings.zeta, settings.rigl_stop)
        )
        grads = _dense_grads(state["params"], keys, steps, data, _plain(settings))
    new, grown = degree_update(ukeys, state["params"], state["masks"], fraction, grads)
    params, opt_state, masks = _install_update(
        state["params"],
        state["opt"],
        state["masks"],
        tuple(map(jnp.asarray, new)),
        tuple(map(jnp.asarray, grown)),
        _plain(settings),
    )
    n_grown = jnp.stack([jnp.asarray(g.reshape(g.shape[0], -1).sum(1)) for g in grown], axis=1)
    return dict(state, params=params, opt=opt_state, masks=masks), n_grown.astype(jnp.int32)


@partial(jax.jit, static_argnames=("settings",))
def _topology_update(state, keys, data, settings: SparseSettings):
    xtr, ytr = data
    if settings.method not in DYNAMIC:
        n_layers = len(state["masks"]["w"])
        return state, jnp.zeros((keys.shape[0], n_layers), jnp.int32)

    def one(params, masks, key, step):
        k = jax.random.fold_in(jax.random.fold_in(key, 3), step)
        if settings.method == "set":
            return set_update(k, params, masks, settings.zeta)
        idx = _batch(jax.random.fold_in(key, 4), step, xtr.shape[0], settings.batch_size)
        dense = {
            "w": [jnp.ones(w.shape, bool) for w in params["w"]],
            "b": [jnp.ones(b.shape, bool) for b in params["b"]],
        }
        # dense gradient: dead weights are exactly 0, so the forward pass is the sparse one
        grads = jax.grad(loss_fn)(
            params, dense, xtr[idx], ytr[idx], settings.activation, settings.loss
        )
        f = rigl_fraction(step, settings.total_steps, settings.zeta, settings.rigl_stop)
        return rigl_update(k, params, masks, grads, f)

    new, grown = jax.vmap(one)(state["params"], state["masks"], keys, state["step"])
    params, opt_state, masks = apply_topology(
        settings.opt, state["params"], state["opt"], state["masks"], new, grown
    )
    n_grown = jnp.stack([g.reshape(g.shape[0], -1).sum(1) for g in grown], axis=1)
    return dict(state, params=params, opt=opt_state, masks=masks), n_grown


# ------------------------------------------------------------------------------------ FLOPs
def training_flops(
    layer_sizes,
    live_per_layer,
    batch: int,
    steps: int,
    *,
    method: str = "static",
    n_updates: int = 0,
) -> float:
    """Training FLOPs of one network, counted as sparse arithmetic would cost them.

    A step costs ``6 × batch × live weights`` (forward 2, backward 4: gradients of activations
    and of weights; biases and activations not counted). A RigL update adds one dense-gradient
    pass: ``2 B live + 4 B n_total`` (sparse forward, dense backward). SET's update costs no
    multiply-adds. ``live_per_layer``: weights live during the steps (a list of per-layer counts).
    """
    live = float(sum(live_per_layer))
    total = float(sum(mlp.n_weights(layer_sizes)))
    f = 6.0 * batch * live * steps
    if method == "rigl":
        f += n_updates * (2.0 * batch * live + 4.0 * batch * total)
    return f


# ------------------------------------------------------------------------------------ runner
#: Providers of initial masks by method name, registered by a layer above (motif, anti-motif:
#: :mod:`mothlab.analysis.topology` registers itself when imported). A provider is
#: ``provider(config) -> mask_fn`` with ``mask_fn(layer_sizes, counts, n_networks, seed)``
#: returning one bool ``(n_networks, n_in, n_out)`` array per layer, network ``i``'s mask
#: depending only on ``(seed, i)``.
MASK_PROVIDERS: dict = {}


def register_mask_provider(method: str, provider) -> None:
    """Let ``config.method == method`` start from the masks ``provider(config)`` makes."""
    MASK_PROVIDERS[method] = provider


@partial(jax.jit, static_argnames=("method", "settings"))
def _runner_update(params, masks, opt_state, keys, grads, fraction, zeta, method: str, settings):
    def one(p, m, k, g):
        if method == "set":
            return set_update(k, p, m, zeta)
        return rigl_update(k, p, m, g, fraction)

    new, grown = jax.vmap(one)(params, masks, keys, grads)
    params, opt_state, masks = apply_topology(settings.opt, params, opt_state, masks, new, grown)
    return {"params": params, "masks": masks, "opt": opt_state}


@partial(jax.jit, static_argnames=("settings",))
def _install(params, opt_state, masks, w_masks, settings):
    masks = {"w": list(w_masks), "b": masks["b"]}
    params = mlp.apply_masks(params, masks)
    return {"params": params, "masks": masks, "opt": reset_entries(settings.opt, opt_state, masks)}


def level_plan(config) -> list[dict]:
    """What each stored level of a sparse-from-the-start run holds, from its config alone:
    one ``{"step", "updates", "updated"}`` per level — ``step``: batches trained by the end of
    the level; ``updates``: topology updates done by then (SET/RigL; 0 for fixed masks);
    ``updated``: whether the level ends with one (its stored mask is the updated one).

    The rule is :meth:`SparseTopology.during_level`'s: SET and RigL update at the end of every
    level but the last; RigL only while its cosine fraction is > 0 (``step < rigl_stop ×
    sparse_steps``, ζ > 0). Pure Python (no JAX), for labels.

    >>> from mothlab.nets import ExperimentConfig
    >>> cfg = ExperimentConfig(method="rigl", sparse_steps=1000, update_every=250, rigl_stop=0.5)
    >>> [(p["step"], p["updates"], p["updated"]) for p in level_plan(cfg)]
    [(250, 1, True), (500, 1, False), (750, 1, False), (1000, 1, False)]
    """
    method = getattr(config, "method", "prune")
    if method == "prune":
        raise ValueError("level_plan describes sparse-from-the-start runs, not prune.")
    total = int(config.sparse_steps)
    every = int(min(config.update_every, total))
    n = int(math.ceil(total / every))
    t_end = max(1.0, float(config.rigl_stop) * total)
    out, done = [], 0
    for i in range(n):
        step = min((i + 1) * every, total)
        upd = method in DYNAMIC and i < n - 1
        if method == "rigl":
            upd = upd and step < t_end and float(config.zeta) > 0
        done += int(upd)
        out.append({"step": step, "updates": done, "updated": upd})
    return out


class SparseTopology:
    """The runner's topology (``mothlab.nets.pruning.Topology`` seam) of a sparse-from-the-start
    run: ``config.method`` in static, set, rigl, motif, anti-motif.

    Levels: ``n_levels = ceil(sparse_steps / update_every)``; level ``i`` trains exactly
    ``update_every`` batches (the last level the remainder) — :meth:`level_settings` fixes the
    level's step limits, so the early-stopping rule plays no part. Before level 0 the initial
    masks are installed (random at the exact per-layer counts, or from the ``mask_fn`` of a
    provider above); at the end of every level but the last, SET/RigL update the masks (in
    :meth:`during_level`, once the level's batches are done), so each stored level holds the
    mask after one topology update and the explorer scrubs through them like sparsity levels.
    Every level's label is the run's overall sparsity ``1 − kept/total``.

    Independence and resume: masks come from ``network_keys(seed, i)``, updates from the
    runner's per-network level key folded with the global step, so a resumed run (which restarts
    the unfinished level from the stored previous one) equals an uninterrupted one.
    """

    def __init__(self, config, settings, mask_fn=None):
        if config.method not in METHODS or config.method == "prune":
            raise ValueError(f"SparseTopology serves {METHODS[1:]}, not {config.method!r}.")
        self.method = config.method
        self.settings = settings
        self.sizes = list(config.layer_sizes)
        self.counts = layer_counts(self.sizes, float(config.density), config.allocation)
        self.total = int(config.sparse_steps)
        self.update_every = int(min(config.update_every, self.total))
        self.zeta = float(config.zeta)
        self.rigl_stop = float(config.rigl_stop)
        self.seed = int(config.seed)
        self.mask_fn = mask_fn
        # where SET/RigL regrow (REGROW); a config without the field regrows freely
        self.regrow = str(getattr(config, "regrow", "free") or "free")
        self.lr_decay_steps = getattr(config, "lr_decay_steps", None)
        self.lr_restart = getattr(config, "lr_restart", "per_level")
        self.n_levels = int(math.ceil(self.total / self.update_every))
        n_all = sum(mlp.n_weights(self.sizes))
        self.sparsity = 1.0 - sum(self.counts) / n_all
        self._level = 0
        self._key = None

    def label(self, i: int) -> float:
        return float(self.sparsity)

    def level_steps(self, i: int) -> int:
        """Batches of level ``i``."""
        if i < self.n_levels - 1:
            return self.update_every
        return self.total - (self.n_levels - 1) * self.update_every

    def level_settings(self, settings, i: int):
        """The runner's settings for level ``i`` with its step limits fixed to
        :meth:`level_steps` (min = max: the level stops exactly there); unless the config sets
        ``lr_decay_steps``, a decaying learning-rate schedule spans the level
        (``lr_restart="per_level"``: warm restarts at every topology update) or the whole
        ``sparse_steps`` (``"continued"``)."""
        n = self.level_steps(i)
        kw = {"min_steps": n, "max_steps": n}
        if self.lr_decay_steps is None and hasattr(settings, "lr_decay_steps"):
            # a decaying schedule spans the level (restarted per level) or the whole run
            kw["lr_decay_steps"] = n if self.lr_restart == "per_level" else self.total
        return dataclasses.replace(settings, **kw)

    def initial_masks(self, n_networks: int):
        from .training import network_keys

        if self.mask_fn is not None:
            ms = self.mask_fn(self.sizes, self.counts, n_networks, self.seed)
            return check_masks(ms, self.sizes, self.counts, n_networks)
        return random_masks(network_keys(self.seed, range(n_networks)), self.sizes, self.counts)

    def before_level(self, state, i: int, key):
        self._level, self._key = int(i), key
        if i > 0:
            return state
        n = state["params"]["w"][0].shape[0]
        return _install(
            state["params"],
            state["opt"],
            state["masks"],
            tuple(self.initial_masks(n)),
            self.settings,
        )

    def during_level(self, state, step: int, grads_fn):
        i = self._level
        if self.method not in DYNAMIC or i >= self.n_levels - 1 or step < self.level_steps(i):
            return None
        gstep = i * self.update_every + self.level_steps(i)  # batches done in the whole run
        fraction = float(rigl_fraction(gstep, self.total, self.zeta, self.rigl_stop))
        if self.method == "rigl" and fraction <= 0:
            return None
        keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 3), gstep))(self._key)
        grads = grads_fn(state) if self.method == "rigl" else state["params"]
        if self.regrow == "degrees":
            new, grown = degree_update(
                keys,
                state["params"],
                state["masks"],
                fraction if self.method == "rigl" else self.zeta,
                grads if self.method == "rigl" else None,
            )
            params, opt, masks = _install_update(
                state["params"],
                state["opt"],
                state["masks"],
                tuple(map(jnp.asarray, new)),
                tuple(map(jnp.asarray, grown)),
                self.settings,
            )
            return {"params": params, "masks": masks, "opt": opt}
        return _runner_update(
            state["params"],
            state["masks"],
            state["opt"],
            keys,
            grads,
            jnp.float32(fraction),
            jnp.float32(self.zeta),
            self.method,
            self.settings,
        )


def _factory(config, settings):
    provider = MASK_PROVIDERS.get(config.method)
    if config.method in ("motif", "anti-motif") and provider is None:
        raise ValueError(
            f"method {config.method!r} needs its mask generator: import "
            "mothlab.analysis.topology first (the CLI and the app do)."
        )
    return SparseTopology(config, settings, provider(config) if provider else None)


def _register():
    try:
        from .pruning import register_topology
    except ImportError:  # a runner without the topology seam: the pure functions still work
        return
    for m in METHODS:
        if m != "prune":
            register_topology(m, _factory)


_register()
