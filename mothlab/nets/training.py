"""Training an ensemble of masked MLPs: optax, ``lax.scan`` chunks, per-network early stopping.

Everything per network is vmapped over the leading network axis; a chunk of ``n`` batches is one
compiled ``lax.scan`` call, so the host synchronises once per chunk, not per batch.

Batches (stated because results depend on it): at level ``ℓ`` and step ``k`` network ``i`` draws
its training batch (``batch_size`` indices, uniform with replacement over the training split) and
its validation batch (``val_batch_size`` indices over the validation split) from
``fold_in(level_key_i, k)``, where ``level_key_i = fold_in(fold_in(key(seed), i), 1 + ℓ)``. The
validation loss of step ``k`` is the MSE of the *updated* network on that validation batch. So a
network's batches, updates and stopping time depend only on ``(seed, i)`` and the config — never
on the other networks (bit-identical on one device and dtype; tested).

Early stopping (SCIENCE.md §3, applied to each network on its own): once a network has done at
least ``es_window`` batches at this level (paper: 1000) and at every ``es_every``-th batch (100),
compare the mean validation loss of batches ``[-window, -window/2)`` with the mean of the last
``window/2``; stop when the relative improvement ``(old - new)/old`` is below
``es_min_improvement`` (1 %). A network also stops at ``max_steps_per_level``. A stopped network is
frozen (parameters, optimizer state and counters unchanged) while the others go on.
``as_published`` instead stops all networks together on the ensemble-mean losses (defect 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import optax

from . import mlp
from .pruning import prune_ensemble, reset_pruned_state


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """``adam`` (paper's JAX setting), ``rmsprop`` (TensorFlow setting) or ``sgd``."""
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "rmsprop":
        return optax.rmsprop(learning_rate)
    if name == "sgd":
        return optax.sgd(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose adam, rmsprop or sgd.")


def network_keys(seed: int, ids) -> jax.Array:
    """Raw uint32 keys (len(ids), 2) of networks ``ids`` of experiment ``seed``."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.uint32))


@dataclass(frozen=True)
class TrainSettings:
    """Static settings of the compiled training step (hashable: part of the jit cache key)."""
    activation: str = "arctan"
    optimizer: str = "adam"
    learning_rate: float = 5e-4
    batch_size: int = 128
    val_batch_size: int = 128
    es_window: int = 1000
    es_every: int = 100
    es_min_improvement: float = 0.01
    min_steps: int = 0
    max_steps: int = 100_000
    as_published: bool = False

    @classmethod
    def from_config(cls, cfg) -> TrainSettings:
        return cls(activation=cfg.activation, optimizer=cfg.optimizer,
                   learning_rate=float(cfg.learning_rate), batch_size=int(cfg.batch_size),
                   val_batch_size=int(cfg.val_batch_size or cfg.batch_size),
                   es_window=int(cfg.es_window), es_every=int(cfg.es_every),
                   es_min_improvement=float(cfg.es_min_improvement),
                   min_steps=int(cfg.min_steps_per_level), max_steps=int(cfg.max_steps_per_level),
                   as_published=bool(cfg.as_published))

    @property
    def opt(self) -> optax.GradientTransformation:
        return make_optimizer(self.optimizer, self.learning_rate)


def init_state(keys, layer_sizes, settings: TrainSettings, init: str = "paper"):
    """Fresh ensemble state for network keys ``(n, 2)``: params, all-True masks, optimizer."""
    params = mlp.init_ensemble(jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys), layer_sizes,
                               init)
    masks = mlp.full_masks(params)
    opt_state = jax.vmap(settings.opt.init)(params)
    return {"params": params, "masks": masks, "opt": opt_state}


def level_state(state, keys, level: int, settings: TrainSettings):
    """Per-level training state: the level's keys and zeroed counters/histories."""
    n = keys.shape[0]
    lkeys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 1), 1 + level))(keys)
    return dict(state, lkey=lkeys, step=jnp.zeros((n,), jnp.int32),
                stopped=jnp.zeros((n,), bool),
                hist=jnp.zeros((n, settings.es_window), jnp.float32))


@partial(jax.jit, static_argnames=("sparsity", "mode", "bias_pruning", "settings"))
def prune_state(state, sparsity: float, mode: str, bias_pruning: str, settings: TrainSettings):
    """Prune every network to ``sparsity``; zero pruned weights and their optimizer state
    (unless ``as_published``, which keeps raw weights and stale moments: defects 2-3)."""
    masks = prune_ensemble(state["params"], state["masks"], sparsity, mode=mode,
                           bias_pruning=bias_pruning, as_published=settings.as_published)
    params, opt_state = state["params"], state["opt"]
    if not settings.as_published:
        params = mlp.apply_masks(params, masks)
        opt_state = reset_pruned_state(settings.opt, opt_state, masks)
    return dict(state, params=params, masks=masks, opt=opt_state)


def _net_step(params, opt_state, masks, lkey, step, data, settings: TrainSettings):
    """One batch of one network: update, then validation loss of the updated network."""
    xtr, ytr, xva, yva = data
    kt, kv = jax.random.split(jax.random.fold_in(lkey, step))
    it = jax.random.randint(kt, (settings.batch_size,), 0, xtr.shape[0])
    loss, grads = jax.value_and_grad(mlp.mse)(params, masks, xtr[it], ytr[it],
                                              settings.activation)
    updates, new_opt = settings.opt.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if not settings.as_published:
        # masked forward already gives zero gradients; re-masking keeps pruned weights exactly 0
        # whatever the optimizer does (e.g. weight decay)
        new_params = mlp.apply_masks(new_params, masks)
    iv = jax.random.randint(kv, (settings.val_batch_size,), 0, xva.shape[0])
    vloss = mlp.mse(new_params, masks, xva[iv], yva[iv], settings.activation)
    return new_params, new_opt, loss, vloss


def _stop_rule(hist, step, settings: TrainSettings):
    """Per-network stop decision from the ring buffer ``hist`` (n, W) after ``step`` batches."""
    w = settings.es_window
    h = w // 2
    ar = jnp.arange(h)
    recent = (step[:, None] - h + ar[None, :]) % w
    older = (step[:, None] - w + ar[None, :]) % w
    new = jnp.mean(jnp.take_along_axis(hist, recent, axis=1), axis=1)
    old = jnp.mean(jnp.take_along_axis(hist, older, axis=1), axis=1)
    if settings.as_published:  # defect 6: one decision for the whole ensemble
        new = jnp.broadcast_to(jnp.mean(new), new.shape)
        old = jnp.broadcast_to(jnp.mean(old), old.shape)
    check = (step >= w) & (step % settings.es_every == 0) & (step >= settings.min_steps)
    plateau = (old - new) < settings.es_min_improvement * old
    # a NaN loss also stops the network (and is reported as NaN, never hidden)
    bad = ~jnp.isfinite(new)
    return (check & (plateau | bad)) | (step >= settings.max_steps)


@partial(jax.jit, static_argnames=("n_steps", "settings"), donate_argnames=("state",))
def train_chunk(state, data, n_steps: int, settings: TrainSettings):
    """Run ``n_steps`` batches (one ``lax.scan``). Returns ``(state, losses)`` with
    ``losses = (train, val)`` each ``(n_steps, n)``, NaN where a network was already stopped."""
    vstep = jax.vmap(partial(_net_step, settings=settings),
                     in_axes=(0, 0, 0, 0, 0, None))

    def body(st, _):
        active = ~st["stopped"]
        params, opt_state, loss, vloss = vstep(st["params"], st["opt"], st["masks"], st["lkey"],
                                               st["step"], data)

        def keep(new, old):
            a = active.reshape(active.shape + (1,) * (new.ndim - 1))
            return jnp.where(a, new, old)

        params = jax.tree.map(keep, params, st["params"])
        opt_state = jax.tree.map(keep, opt_state, st["opt"])
        pos = st["step"] % settings.es_window
        n = active.shape[0]
        hist = st["hist"].at[jnp.arange(n), pos].set(
            jnp.where(active, vloss, st["hist"][jnp.arange(n), pos]))
        step = st["step"] + active.astype(jnp.int32)
        stopped = st["stopped"] | (active & _stop_rule(hist, step, settings))
        nan = jnp.float32(jnp.nan)
        out = (jnp.where(active, loss, nan), jnp.where(active, vloss, nan))
        return dict(st, params=params, opt=opt_state, hist=hist, step=step,
                    stopped=stopped), out

    return jax.lax.scan(body, state, None, length=n_steps)


@partial(jax.jit, static_argnames=("activation",))
def _sq_err_sum(params, masks, x, y, w, activation):
    def one(p, m):
        e = (mlp.forward(p, m, x, activation) - y) ** 2
        return jnp.sum(jnp.sum(e, axis=1) * w)
    return jax.vmap(one)(params, masks)


def evaluate(params, masks, x, y, activation: str, eval_batch: int = 16384):
    """Mean squared error of every network on ``(x, y)`` (n_samples, ·) → (n,) float64 numpy.

    Evaluated in chunks of ``eval_batch`` samples (the last one zero-padded and weighted out), so
    memory stays bounded for millions of samples and the jit sees one shape.
    """
    import numpy as np

    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot evaluate on an empty split; use a larger dataset.")
    b = min(eval_batch, n)
    total = None
    for start in range(0, n, b):
        xb = np.asarray(x[start:start + b], np.float32)
        yb = np.asarray(y[start:start + b], np.float32)
        wgt = np.ones(b, np.float32)
        if xb.shape[0] < b:
            pad = b - xb.shape[0]
            wgt[b - pad:] = 0.0
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), np.float32)])
            yb = np.concatenate([yb, np.zeros((pad, yb.shape[1]), np.float32)])
        s = _sq_err_sum(params, masks, xb, yb, wgt, activation)
        total = s if total is None else total + s
    return np.asarray(total, np.float64) / (n * y.shape[1])
