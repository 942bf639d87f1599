"""Training an ensemble of masked MLPs: optax, ``lax.scan`` chunks, per-network early stopping.

Everything per network is vmapped over the leading network axis; a chunk of ``n`` batches is one
compiled ``lax.scan`` call, so the host synchronises once per chunk, not per batch.

Batches (stated because results depend on it): at level ``ℓ`` and step ``k`` network ``i`` draws
its training batch (``batch_size`` indices, uniform with replacement over the training split) and
its validation batch (``val_batch_size`` indices over the validation split) from
``fold_in(level_key_i, k)``, where ``level_key_i = fold_in(fold_in(key(seed), i), 1 + ℓ)``. The
validation loss of step ``k`` is the MSE of the *updated* network on that validation batch. So a
network's batches, updates and stopping time depend only on ``(seed, i)`` and the config — never
on the other networks. Its arithmetic is the same up to float32 round-off, not bit for bit: XLA
vectorises the vmapped ensemble differently for different ensemble sizes. Measured (CPU, jax
0.10.2, 2026-12-01): network 3 of 10-50-50-50-8-7 trained alone
and among 8 for 2 000 cosine-scheduled batches differs by at most 7.2e-7 in any weight; on the
tests' 10-6-6-7 networks by 1.4e-8. A stop decision right at the threshold can therefore
fall one check earlier or later.

Learning rate: an optax schedule (:func:`make_schedule`): constant, cosine decay, or linear
warm-up then cosine decay, to ``lr_decay_to × learning_rate``; either restarted at every level
(the schedule's step count is reset, :func:`restart_schedule`) or continued across levels.

Early stopping (SCIENCE.md §3, applied to each network on its own): after more than
``es_window`` batches at this level (paper: 1000) and at every ``es_every``-th batch (100),
compare the mean validation loss of batches ``[-window, -window/2)`` (``old``) with the mean of
the last ``window/2`` (``new``). Two rules (``es_rule``):

- ``"paper"``: stop when the relative improvement ``(old - new)/old`` is below
  ``es_min_improvement`` (1 %). With 500-batch halves the two means differ by ~1 % from batch
  noise alone, so this rule often fires while a network is still improving.
- ``"noise"`` (default): stop only when the improvement is *confidently* below that tolerance:
  ``(old - new) + es_z · se < es_min_improvement · old``, with ``se`` the standard error of the
  difference of the two means (from the spread of the batch losses in each half, taken as
  independent). Noise then delays a stop instead of causing one.

A network also stops at its step cap (``max_steps_per_level``); such a network is flagged as
*capped* (its stop rule never fired) and the runner stores and reports that. A stopped network is
frozen (parameters, optimizer state and counters unchanged) while the others go on.
``as_published`` instead stops all networks together on the ensemble-mean losses (defect 6).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import optax

from . import mlp
from .pruning import prune_state

__all__ = [
    "TrainSettings",
    "make_schedule",
    "make_optimizer",
    "restart_schedule",
    "network_keys",
    "init_state",
    "level_state",
    "prune_state",
    "train_chunk",
    "dense_grads",
    "evaluate",
]

LR_SCHEDULES = ("constant", "cosine", "warmup_cosine")


def make_schedule(
    kind: str, learning_rate: float, decay_steps: int, decay_to: float = 0.01, warmup_steps: int = 0
) -> optax.Schedule:
    """The learning rate as an optax schedule of the optimizer's step count.

    ``constant``: ``learning_rate``; ``cosine``: cosine decay from ``learning_rate`` to
    ``decay_to × learning_rate`` over ``decay_steps`` (then constant); ``warmup_cosine``: linear
    from 0 to ``learning_rate`` over ``warmup_steps``, then cosine decay to the same end value,
    reached at step ``decay_steps``.

    >>> s = make_schedule("cosine", 1e-2, 100, decay_to=0.1)
    >>> float(s(0)), round(float(s(50)), 6), float(s(100))
    (0.01, 0.0055, 0.001)
    """
    lr = float(learning_rate)
    if kind == "constant":
        return optax.constant_schedule(lr)
    if kind == "cosine":
        return optax.cosine_decay_schedule(lr, max(1, int(decay_steps)), alpha=float(decay_to))
    if kind == "warmup_cosine":
        warm = max(0, int(warmup_steps))
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, warm, max(warm + 1, int(decay_steps)), end_value=lr * float(decay_to)
        )
    raise ValueError(
        f"unknown learning-rate schedule {kind!r}; choose one of {', '.join(LR_SCHEDULES)}."
    )


def restart_schedule(opt_state):
    """``opt_state`` with every schedule's step count set to 0 (a warm restart of the learning
    rate; Adam's own bias-correction count is left alone)."""

    def reset(node):
        if isinstance(node, optax.ScaleByScheduleState):
            return node._replace(count=jnp.zeros_like(node.count))
        return node

    return jax.tree.map(
        reset, opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByScheduleState)
    )


#: Adam's constants (optax's defaults), read by :func:`make_optimizer` and the trainer's own
#: update (``_adam_update``), so the two cannot drift apart.
ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}


def make_optimizer(name: str, learning_rate) -> optax.GradientTransformation:
    """``adam`` (paper's JAX setting, :data:`ADAM`), ``rmsprop`` (TensorFlow setting) or
    ``sgd``; ``learning_rate`` is a number or an optax schedule."""
    if name == "adam":
        return optax.adam(learning_rate, **ADAM)
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
    es_rule: str = "paper"
    es_z: float = 2.0
    lr_schedule: str = "constant"
    lr_decay_steps: int = 100_000
    lr_decay_to: float = 0.01
    lr_warmup_steps: int = 0
    #: batches per iteration of the compiled loop (``lax.scan``'s ``unroll``; the same results);
    #: 0: automatic, 2 for networks of at least ``UNROLL_MIN_WEIGHTS`` weights, else 1
    unroll: int = 0

    @classmethod
    def from_config(cls, cfg) -> TrainSettings:
        """Settings of the pruned levels (the runner derives the dense level's with
        :meth:`for_level`)."""
        return cls(
            activation=cfg.activation,
            optimizer=cfg.optimizer,
            learning_rate=float(cfg.learning_rate),
            batch_size=int(cfg.batch_size),
            val_batch_size=int(cfg.val_batch_size or cfg.batch_size),
            es_window=int(cfg.es_window),
            es_every=int(cfg.es_every),
            es_min_improvement=float(cfg.es_min_improvement),
            min_steps=int(cfg.min_steps_per_level),
            max_steps=int(cfg.max_steps_per_level),
            as_published=bool(cfg.as_published),
            es_rule=str(cfg.es_rule),
            es_z=float(cfg.es_z),
            lr_schedule=str(cfg.lr_schedule),
            lr_decay_steps=int(cfg.lr_decay_steps or cfg.max_steps_per_level),
            lr_decay_to=float(cfg.lr_decay_to),
            lr_warmup_steps=int(cfg.lr_warmup_steps),
        )

    @classmethod
    def for_level(cls, cfg, level: int, n_levels: int) -> TrainSettings:
        """Settings of level ``level``: the dense level (0) has its own step limits; the
        schedule's horizon is ``lr_decay_steps`` or, when None, the level's step cap (restarted
        per level) or the sum of all caps (continued)."""
        s = cls.from_config(cfg)
        if level == 0:
            kw = {}
            if cfg.dense_max_steps:
                kw["max_steps"] = int(cfg.dense_max_steps)
            if cfg.dense_min_steps is not None:
                kw["min_steps"] = int(cfg.dense_min_steps)
            s = replace(s, **kw)
        elif cfg.retrain_learning_rate:
            s = replace(s, learning_rate=float(cfg.retrain_learning_rate))
        if not cfg.lr_decay_steps:
            dense = int(cfg.dense_max_steps or cfg.max_steps_per_level)
            total = dense + (n_levels - 1) * int(cfg.max_steps_per_level)
            s = replace(s, lr_decay_steps=s.max_steps if cfg.lr_restart == "per_level" else total)
        return s

    @property
    def schedule(self) -> optax.Schedule:
        return make_schedule(
            self.lr_schedule,
            self.learning_rate,
            self.lr_decay_steps,
            self.lr_decay_to,
            self.lr_warmup_steps,
        )

    @property
    def opt(self) -> optax.GradientTransformation:
        # always a schedule (a constant one too), so the optimizer state has one structure for
        # every schedule kind; a constant schedule's arithmetic equals a fixed learning rate's
        return make_optimizer(self.optimizer, self.schedule)


def init_state(keys, layer_sizes, settings: TrainSettings, init: str = "paper"):
    """Fresh ensemble state for network keys ``(n, 2)``: params, all-True masks, optimizer.

    One compiled program (run op by op it compiled ~20 small programs, ~10 s on the 2-core
    CPU)."""
    return _init_state(keys, tuple(int(n) for n in layer_sizes), settings, init)


@partial(jax.jit, static_argnames=("layer_sizes", "settings", "init"))
def _init_state(keys, layer_sizes, settings: TrainSettings, init: str):
    params = mlp.init_ensemble(
        jax.vmap(lambda k: jax.random.fold_in(k, 0))(keys), layer_sizes, init
    )
    masks = mlp.full_masks(params)
    opt_state = jax.vmap(settings.opt.init)(params)
    return {"params": params, "masks": masks, "opt": opt_state}


def level_state(state, keys, level: int, settings: TrainSettings):
    """Per-level training state: the level's keys and zeroed counters/histories."""
    n = keys.shape[0]
    lkeys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 1), 1 + level))(keys)
    return dict(
        state,
        lkey=lkeys,
        step=jnp.zeros((n,), jnp.int32),
        stopped=jnp.zeros((n,), bool),
        capped=jnp.zeros((n,), bool),
        hist=jnp.zeros((n, settings.es_window), jnp.float32),
    )


def _net_pass(params, masks, lkey, step, iv_prev, data, settings: TrainSettings):
    """Forward and backward pass of one network at its step ``step``: the training loss and
    (masked) gradient on the step's training batch, and in the same forward pass the validation
    loss of these weights on the validation batch ``iv_prev`` of the step before (the weights
    after update ``step - 1`` are the ones step ``step`` trains). Also returns this step's
    validation indices, which the next pass (or the chunk's closing pass) evaluates."""
    xtr, ytr, xva, yva = data
    kt, kv = jax.random.split(jax.random.fold_in(lkey, step))
    it = jax.random.randint(kt, (settings.batch_size,), 0, xtr.shape[0])
    iv = jax.random.randint(kv, (settings.val_batch_size,), 0, xva.shape[0])
    # Not as published, a pruned weight is exactly 0 on entry (train_chunk masks the active
    # networks once per chunk) and after every update (re-masked in _net_update), so the forward
    # pass needs no mask multiply: the same outputs, and the masked gradient is the gradient of
    # the masked forward. As published, raw pruned weights may drift (defects 2-3): the forward
    # uses the masked weights (the gradient of ``where(m, p, 0)`` is ``where(m, g, 0)``, so
    # masking the gradient below is the chain rule). Measured against the masked forward (paper
    # width, 4 networks, one device, in one process, timed in turns, best of 9; 2026-12-02 03:40
    # UTC, load 2.7-4.3): 1.12x wall, 1.09x CPU time per batch.
    eff = mlp.apply_masks(params, masks) if settings.as_published else params
    loss, grads, vloss_prev = mlp.mse_grads_and_eval(
        eff, xtr[it], ytr[it], xva[iv_prev], yva[iv_prev], settings.activation
    )
    return loss, mlp.apply_masks(grads, masks), vloss_prev, iv


def _net_update(grads, params, opt_state, masks, active, settings: TrainSettings):
    """The optimizer's update of one network; a network that is not ``active`` (stopped) keeps
    its parameters and optimizer state."""
    if settings.optimizer == "adam":
        new_params, new_opt = _adam_update(grads, opt_state, params, active, settings)
    else:
        updates, new_opt = settings.opt.update(grads, opt_state, params)
        new_params = jax.tree.map(
            lambda a, b: jnp.where(active, a, b), optax.apply_updates(params, updates), params
        )
        new_opt = jax.tree.map(lambda a, b: jnp.where(active, a, b), new_opt, opt_state)
    if not settings.as_published:
        # re-masking keeps pruned weights exactly 0 whatever the optimizer does (e.g. weight
        # decay)
        new_params = mlp.apply_masks(new_params, masks)
    return new_params, new_opt


def _val_loss(params, masks, iv, data, settings: TrainSettings):
    """Validation loss of one network on the validation rows ``iv`` (the chunk's closing pass)."""
    fwd_masks = masks if settings.as_published else None
    return mlp.mse(params, fwd_masks, data[2][iv], data[3][iv], settings.activation)


def _adam_update(grads, opt_state, params, active, settings: TrainSettings):
    """``settings.opt`` (``optax.adam`` on the learning-rate schedule with :data:`ADAM`'s
    constants) applied to one network, with the stopped-network select (``active`` False:
    nothing changes), from optax's own formulas and state: ``(ScaleByAdamState,
    ScaleByScheduleState)``.

    Why not ``settings.opt.update`` and a select afterwards: XLA computes the new moments twice
    (for the state and inside the update) and must keep the old ones alive for the select, so it
    copies both moments and the weights of every layer in every batch. Here the selected moments
    are materialised first (``optimization_barrier``) and the update is computed from them.
    Measured (paper width, 4 networks, one device, in one process, timed in turns, best of 9;
    2026-12-02 03:47 UTC, load 1.7-2.5): 1.14x wall, 1.15x CPU time per batch against the optax
    update with the select after it, as fast as no select at all (1.13x); weight-sized copies per
    batch 6 -> 2; at 10-50-50-50-8-7 (16 networks) 1.04x. The bias corrections are multiplied
    by their scalar reciprocals (optax divides every element by them; the same numbers to one
    float32 rounding per element, two divisions fewer per weight). Tested equal to
    ``optax.adam`` to float32 round-off, and a stopped network unchanged bit for bit.
    """
    b1, b2, eps = ADAM["b1"], ADAM["b2"], ADAM["eps"]
    adam, sched = opt_state

    def keep(new, old):
        return jnp.where(active, new, old)

    mu = jax.tree.map(keep, optax.tree.update_moment(grads, adam.mu, b1, 1), adam.mu)
    nu = jax.tree.map(keep, optax.tree.update_moment_per_elem_norm(grads, adam.nu, b2, 2), adam.nu)
    mu, nu = jax.lax.optimization_barrier((mu, nu))
    count = optax.safe_increment(adam.count)
    # optax.tree.bias_correction's denominators 1 - b**count, as reciprocals
    r1 = 1 / (1 - b1**count)
    r2 = 1 / (1 - b2**count)
    lr = settings.schedule(sched.count)
    zero = jnp.zeros((), jnp.float32)
    new_params = jax.tree.map(
        lambda p, m, v: (
            p
            + jnp.where(
                active, jnp.asarray(-lr, p.dtype) * ((m * r1) / (jnp.sqrt(v * r2) + eps)), zero
            )
        ),
        params,
        mu,
        nu,
    )
    new_opt = (
        adam._replace(count=keep(count, adam.count), mu=mu, nu=nu),
        sched._replace(count=keep(optax.safe_increment(sched.count), sched.count)),
    )
    return new_params, new_opt


def _early_stop(hist, step, settings: TrainSettings):
    """Per-network decision of the early-stopping rule (not the step cap) from the ring buffer
    ``hist`` (n, W) of validation losses after ``step`` batches."""
    w = settings.es_window
    h = w // 2
    ar = jnp.arange(h)
    recent = jnp.take_along_axis(hist, (step[:, None] - h + ar[None, :]) % w, axis=1)
    older = jnp.take_along_axis(hist, (step[:, None] - w + ar[None, :]) % w, axis=1)
    new = jnp.mean(recent, axis=1)
    old = jnp.mean(older, axis=1)
    # standard error of (old - new) from the spread of the batch losses in each half
    se = jnp.sqrt((jnp.var(recent, axis=1) + jnp.var(older, axis=1)) / h)
    if settings.as_published:  # defect 6: one decision for the whole ensemble
        new = jnp.broadcast_to(jnp.mean(new), new.shape)
        old = jnp.broadcast_to(jnp.mean(old), old.shape)
        se = jnp.broadcast_to(jnp.sqrt(jnp.mean(se**2) / se.shape[0]), se.shape)
    # "after more than es_window batches" (SCIENCE.md §3): the first check at window + every
    check = (step > w) & (step % settings.es_every == 0) & (step >= settings.min_steps)
    margin = settings.es_z * se if settings.es_rule == "noise" else 0.0
    plateau = (old - new) + margin < settings.es_min_improvement * old
    # a NaN loss also stops the network (and is reported as NaN, never hidden)
    bad = ~jnp.isfinite(new)
    return check & (plateau | bad)


def _stop_rule(hist, step, settings: TrainSettings):
    """Per-network stop decision: the early-stopping rule, or the step cap."""
    return _early_stop(hist, step, settings) | (step >= settings.max_steps)


#: Networks with at least this many weights train two batches per loop iteration (automatic
#: ``TrainSettings.unroll``): XLA then schedules across the two. Measured at paper width
#: (330,512 weights; 8 networks sharded over the 2 CPU devices, 50 batches per call, in one
#: process, timed in turns, best of 9; 2026-12-02 06:25 and 06:30 UTC, load 3.9-4.3): 1.11x and
#: 1.13x network-steps/s against one batch per iteration, 1.07x with four. Small networks keep
#: one: there compile time dominates (the tests' 10-6-6-7 network: 7.5 s against 5.9 s to
#: compile and run a chunk, load 3.0-3.7).
UNROLL_MIN_WEIGHTS = 50_000


def _unroll(state, settings: TrainSettings) -> int:
    if settings.unroll > 0:
        return settings.unroll
    weights = sum(int(w[0].size) for w in state["params"]["w"])
    return 2 if weights >= UNROLL_MIN_WEIGHTS else 1


def _record(st, pend, vloss, settings: TrainSettings):
    """Enter the validation losses ``vloss`` of the networks with a pending step (``pend``: one
    update done since the last record, ``st["step"]`` already counts it) into their ring buffers,
    then apply the stop rule to them."""
    pos = (st["step"] - 1) % settings.es_window
    # an elementwise select, not a scatter at (arange(n), pos): with the network axis sharded, a
    # scatter or gather over it made XLA gather and reduce across devices in every batch
    slot = (jnp.arange(settings.es_window)[None, :] == pos[:, None]) & pend[:, None]
    hist = jnp.where(slot, vloss[:, None], st["hist"])
    es = _early_stop(hist, st["step"], settings)
    cap = st["step"] >= settings.max_steps
    return dict(
        st,
        hist=hist,
        stopped=st["stopped"] | (pend & (es | cap)),
        capped=st["capped"] | (pend & cap & ~es),
    )


@partial(jax.jit, static_argnames=("n_steps", "settings"), donate_argnames=("state",))
def train_chunk(state, data, n_steps: int, settings: TrainSettings):
    """Run ``n_steps`` batches (one ``lax.scan``). Returns ``(state, losses)`` with
    ``losses = (train, val)`` each ``(n_steps, n)``, NaN where a network was already stopped.

    Each batch of a network: training batch, update, validation loss of the updated network,
    stop rule (module docstring). How it is computed: the validation forward pass of step ``k``
    is folded into step ``k+1``'s forward pass (the same weights; the two batches go through
    each layer as one matrix product), and step ``k``'s stop decision is taken there, before
    update ``k+1`` (a network stopped at ``k`` makes no update ``k+1``); a closing pass after
    the scan evaluates the chunk's last step. So the same validation losses enter the same ring
    buffer, and a chunk ends in the same state as batch-by-batch (tested against a reference
    step and across chunk sizes). The first pass's validation rows have no pending step and
    are thrown away (one validation batch per chunk).
    """
    n = state["step"].shape[0]
    if n_steps <= 0:
        empty = jnp.zeros((0, n), jnp.float32)
        return state, (empty, empty)
    vpass = jax.vmap(partial(_net_pass, settings=settings), in_axes=(0, 0, 0, 0, 0, None))
    vupdate = jax.vmap(partial(_net_update, settings=settings))
    if not settings.as_published:
        # the invariant _net_pass relies on (pruned weights exactly 0), for any caller's state;
        # a no-op for the runner's (pruning and every update already zero them). Stopped networks
        # are left as they are (frozen).
        act = ~state["stopped"]
        state = dict(
            state,
            params=jax.tree.map(
                lambda p, m: jnp.where(
                    act.reshape(act.shape + (1,) * (p.ndim - 1)) & ~m, jnp.zeros((), p.dtype), p
                ),
                state["params"],
                state["masks"],
            ),
        )
    nan = jnp.float32(jnp.nan)

    def body(carry, _):
        st, pend, iv_prev = carry
        loss, grads, vprev, iv = vpass(
            st["params"], st["masks"], st["lkey"], st["step"], iv_prev, data
        )
        st = _record(st, pend, vprev, settings)  # the previous step's loss and stop decision
        active = ~st["stopped"]
        params, opt_state = vupdate(grads, st["params"], st["opt"], st["masks"], active)
        st = dict(st, params=params, opt=opt_state, step=st["step"] + active.astype(jnp.int32))
        out = (jnp.where(active, loss, nan), jnp.where(pend, vprev, nan))
        return (st, active, iv), out

    pend0 = jnp.zeros((n,), bool)
    iv0 = jnp.zeros((n, settings.val_batch_size), jnp.int32)
    (st, pend, iv), (tl, vl) = jax.lax.scan(
        body, (state, pend0, iv0), None, length=n_steps, unroll=_unroll(state, settings)
    )
    vlast = jax.vmap(partial(_val_loss, settings=settings), in_axes=(0, 0, 0, None))(
        st["params"], st["masks"], iv, data
    )
    st = _record(st, pend, vlast, settings)
    vl = jnp.concatenate([vl[1:], jnp.where(pend, vlast, nan)[None]])
    return st, (tl, vl)


@partial(jax.jit, static_argnames=("settings",))
def dense_grads(params, masks, lkey, step, data, settings: TrainSettings):
    """Gradient of the training loss of every network on one batch with respect to its
    *effective* weights as if no entry were masked (RigL's growth signal): same structure as
    ``params`` (leading network axis). The batch comes from ``fold_in(lkey_i, 2**31 + step)``, a
    key the training batches (``fold_in(lkey_i, step)``, step < 2**31) never use."""
    xtr, ytr = data[0], data[1]

    def one(p, m, k, s):
        eff = mlp.apply_masks(p, m)
        kk = jax.random.fold_in(k, jnp.uint32(2**31) + s.astype(jnp.uint32))
        it = jax.random.randint(kk, (settings.batch_size,), 0, xtr.shape[0])
        return jax.grad(mlp.mse)(eff, mlp.full_masks(eff), xtr[it], ytr[it], settings.activation)

    return jax.vmap(one)(params, masks, lkey, step)


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
        xb = np.asarray(x[start : start + b], np.float32)
        yb = np.asarray(y[start : start + b], np.float32)
        wgt = np.ones(b, np.float32)
        if xb.shape[0] < b:
            pad = b - xb.shape[0]
            wgt[b - pad :] = 0.0
            xb = np.concatenate([xb, np.zeros((pad, xb.shape[1]), np.float32)])
            yb = np.concatenate([yb, np.zeros((pad, yb.shape[1]), np.float32)])
        s = _sq_err_sum(params, masks, xb, yb, wgt, activation)
        total = s if total is None else total + s
    return np.asarray(total, np.float64) / (n * y.shape[1])
