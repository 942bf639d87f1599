"""Ensemble MLP, training chunks, per-network early stopping, batch invariance."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mothlab.nets import mlp
from mothlab.nets.training import (
    TrainSettings,
    _adam_update,
    _stop_rule,
    evaluate,
    init_state,
    level_state,
    network_keys,
    prune_state,
    train_chunk,
)

SIZES = [10, 6, 6, 7]


def _take(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, 10)).astype(np.float32)
    y = np.stack([np.sin(3 * x[:, i]) * 0.3 + 0.1 * x[:, i + 1] for i in range(7)], 1)
    return x, y.astype(np.float32)


def _train_data():
    xt, yt = _data(400, 0)
    xv, yv = _data(100, 1)
    return tuple(jnp.asarray(a) for a in (xt, yt, xv, yv))


def test_forward_matches_numpy_reference_with_masks():
    params = mlp.init_ensemble(network_keys(0, range(2)), SIZES)
    rng = np.random.default_rng(0)
    masks = jax.tree.map(lambda p: jnp.asarray(rng.random(p.shape) < 0.6), params)
    x = rng.standard_normal((5, 10)).astype(np.float32)
    for i in range(2):
        p = jax.tree.map(lambda a: np.asarray(a, np.float64), _take(params, i))
        m = jax.tree.map(np.asarray, _take(masks, i))
        h = x.astype(np.float64)
        for l in range(3):
            h = h @ (p["w"][l] * m["w"][l]) + p["b"][l] * m["b"][l]
            if l < 2:
                h = np.arctan(h)
        got = mlp.forward(_take(params, i), _take(masks, i), x)
        np.testing.assert_allclose(np.asarray(got), h, rtol=1e-5, atol=1e-6)
        # the gradient of a pruned weight is exactly zero
        g = jax.grad(mlp.mse)(_take(params, i), _take(masks, i), x, jnp.zeros((5, 7)))
        for gw, mw in zip(g["w"], m["w"]):
            assert (np.asarray(gw)[~mw] == 0).all()


def test_paper_init_scale():
    p = mlp.init_ensemble(network_keys(1, range(4)), [10, 400, 7])
    w = np.asarray(p["w"][0])
    assert abs(w.std() - 0.2) < 0.01 and abs(w.mean()) < 0.01
    assert (np.asarray(p["b"][0]) == 0).all()
    g = mlp.init_ensemble(network_keys(1, range(4)), [10, 400, 7], init="he")
    assert abs(np.asarray(g["w"][0]).std() - np.sqrt(2 / 10)) < 0.02


def test_stop_rule_per_network():
    s = TrainSettings(es_window=10, es_every=5, es_min_improvement=0.01, max_steps=1000)
    flat = np.ones(10, np.float32)
    falling = np.linspace(2.0, 1.0, 10).astype(np.float32)
    hist = jnp.asarray(np.stack([flat, falling]))
    stop = np.asarray(_stop_rule(hist, jnp.array([20, 20]), s))
    assert stop.tolist() == [True, False]
    # not a check step / too early (the first check comes after MORE than es_window batches):
    # no stop; the step limit always stops
    assert not np.asarray(_stop_rule(hist, jnp.array([21, 21]), s)).any()
    assert not np.asarray(_stop_rule(hist, jnp.array([10, 10]), s)).any()
    assert not np.asarray(_stop_rule(hist, jnp.array([5, 5]), s)).any()
    s2 = TrainSettings(es_window=10, es_every=5, max_steps=11)
    assert np.asarray(_stop_rule(hist, jnp.array([11, 11]), s2)).all()
    # as published: one joint decision from the ensemble means
    pub = TrainSettings(es_window=10, es_every=5, as_published=True)
    assert np.asarray(_stop_rule(hist, jnp.array([20, 20]), pub)).tolist() == [False, False]


def _run_level(ids, s, steps=120, chunk=40, sparsity=0.5):
    keys = network_keys(7, ids)
    state = init_state(keys, SIZES, s)
    state = prune_state(state, sparsity, "layerwise", "magnitude", s)
    st = level_state(state, keys, 0, s)
    data = _train_data()
    for _ in range(steps // chunk):
        st, _ = train_chunk(st, data, chunk, s)
    return st


S = TrainSettings(
    learning_rate=1e-2,
    es_window=20,
    es_every=10,
    es_min_improvement=0.05,
    max_steps=100,
    batch_size=16,
    val_batch_size=16,
)


def test_training_keeps_pruned_weights_zero_stops_per_network_and_is_batch_invariant():
    among = _run_level(list(range(5)), S)
    alone = _run_level([3], S)
    steps = np.asarray(among["step"])
    # per-network early stopping: everyone stopped, not all at the same step, stopped ones frozen
    assert np.asarray(among["stopped"]).all()
    assert len(set(steps.tolist())) > 1, f"all networks stopped together: {steps}"
    assert (steps <= S.max_steps).all()
    # pruned weights are exactly zero after retraining
    for w, m in zip(among["params"]["w"], among["masks"]["w"]):
        assert (np.asarray(w)[~np.asarray(m)] == 0).all()
        assert (np.asarray(m).sum((1, 2)) == round(0.5 * m.shape[1] * m.shape[2])).all()
    # network 3 alone == network 3 among others, up to float32 round-off (XLA vectorises the
    # vmapped ensemble differently per ensemble size; measured here: <= 1.4e-8 absolute)
    for a, b in zip(jax.tree.leaves(among["params"]), jax.tree.leaves(alone["params"])):
        np.testing.assert_allclose(np.asarray(a)[3], np.asarray(b)[0], rtol=1e-4, atol=1e-6)
    assert int(among["step"][3]) == int(alone["step"][0])


@pytest.mark.parametrize("as_published", [False, True])
def test_train_chunk_matches_a_masked_forward_reference_step(as_published):
    """train_chunk's forward skips the mask multiply (pruned weights are kept at 0) and folds
    each validation pass into the next batch's forward pass; a direct reference with the masked
    forward of every pass (mlp.mse with masks), the documented batch keys, the validation loss
    of each updated network computed on its own, and the same optax optimizer must give the
    same losses and weights, also from a state whose pruned raw weights are not 0 (as
    published: raw pruned weights drift, the forward masks them)."""
    import optax

    s = dataclasses.replace(S, max_steps=10**6, es_window=1000, as_published=as_published)
    keys = network_keys(7, [0, 1])
    state = prune_state(init_state(keys, SIZES, s), 0.5, "layerwise", "magnitude", s)
    # garbage at the pruned entries: the masked forward ignores it, so must train_chunk
    state = dict(
        state,
        params=jax.tree.map(lambda p, m: jnp.where(m, p, 0.7), state["params"], state["masks"]),
    )
    st = level_state(state, keys, 0, s)
    data = _train_data()
    xtr, ytr, xva, yva = data
    ref_losses = []
    for i in range(2):
        p, o = _take(st["params"], i), _take(st["opt"], i)
        m, lkey = _take(st["masks"], i), st["lkey"][i]
        rows = []
        for k in range(25):
            kt, kv = jax.random.split(jax.random.fold_in(lkey, k))
            it = jax.random.randint(kt, (s.batch_size,), 0, xtr.shape[0])
            loss, g = jax.value_and_grad(mlp.mse)(p, m, xtr[it], ytr[it], s.activation)
            u, o = s.opt.update(g, o, p)
            p = optax.apply_updates(p, u)
            if not as_published:
                p = mlp.apply_masks(p, m)
            iv = jax.random.randint(kv, (s.val_batch_size,), 0, xva.shape[0])
            rows.append((float(loss), float(mlp.mse(p, m, xva[iv], yva[iv], s.activation))))
        ref_losses.append(rows)
        ref_p = p
        got, (tl, vl) = train_chunk(jax.tree.map(jnp.copy, st), data, 25, s)
        np.testing.assert_allclose(np.asarray(tl)[:, i], [r[0] for r in rows], rtol=2e-5)
        np.testing.assert_allclose(np.asarray(vl)[:, i], [r[1] for r in rows], rtol=2e-5)
        for a, b in zip(jax.tree.leaves(_take(got["params"], i)), jax.tree.leaves(ref_p)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        for w, mw in zip(got["params"]["w"], got["masks"]["w"]):
            assert as_published or (np.asarray(w)[~np.asarray(mw)] == 0).all()
        # the validation losses entered the stop rule's ring buffer, in order
        h = np.asarray(got["hist"])[i, :25]
        np.testing.assert_allclose(h, [r[1] for r in rows], rtol=2e-5)


@pytest.mark.parametrize("activation", ["arctan", "tanh"])
def test_fused_forward_backward_is_autodiff_of_mse(activation):
    # the trainer's hand-written pass: one forward of training + evaluation rows, backward over
    # the training rows; must equal jax.value_and_grad(mse) and mse on the rows apart
    sizes = [10, 20, 20, 5, 7]
    p = mlp.init_network(jax.random.PRNGKey(3), sizes)
    p["b"] = [jnp.full(b.shape, 0.1 * (i + 1), jnp.float32) for i, b in enumerate(p["b"])]
    rng = np.random.default_rng(2)
    x, xe = rng.standard_normal((16, 10)), rng.standard_normal((24, 10))  # unequal row counts
    y, ye = rng.standard_normal((16, 7)), rng.standard_normal((24, 7))
    x, y, xe, ye = (jnp.asarray(a, jnp.float32) for a in (x, y, xe, ye))
    loss, g, eval_loss = jax.jit(mlp.mse_grads_and_eval, static_argnames="activation")(
        p, x, y, xe, ye, activation
    )
    ref_loss, ref_g = jax.jit(jax.value_and_grad(mlp.mse), static_argnums=4)(
        p, None, x, y, activation
    )
    ref_eval = jax.jit(mlp.mse, static_argnums=4)(p, None, xe, ye, activation)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-6)
    np.testing.assert_allclose(float(eval_loss), float(ref_eval), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref_g)):
        scale = float(np.max(np.abs(np.asarray(b))))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6 * scale)


def test_chunk_size_changes_nothing():
    # the folded validation pass: a chunk ends with a closing pass and the next one starts with
    # no pending step; so 120 batches in chunks of 40 or 15 give the same stops, ring buffers,
    # losses and weights (to round-off: the closing pass is a separate forward); also with two
    # batches per loop iteration (paper width's automatic setting) and an odd chunk
    def run(chunk, unroll=1):
        s = dataclasses.replace(S, unroll=unroll)
        keys = network_keys(7, range(4))
        st = level_state(init_state(keys, SIZES, s), keys, 0, s)
        out = []
        for _ in range(120 // chunk):
            st, losses = train_chunk(st, _train_data(), chunk, s)
            out.append(np.stack([np.asarray(a) for a in losses]))
        return st, np.concatenate(out, axis=1)

    a, la = run(40)
    b, lb = run(15, unroll=2)
    for k in ("step", "stopped", "capped"):
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
    assert len(set(np.asarray(a["step"]).tolist())) > 1  # stops fell inside chunks
    np.testing.assert_allclose(np.asarray(a["hist"]), np.asarray(b["hist"]), rtol=1e-6)
    np.testing.assert_allclose(la, lb, rtol=1e-6)  # NaN where stopped, in both
    for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("schedule", ["constant", "warmup_cosine"])
def test_adam_update_is_optax_adam_and_freezes_a_stopped_network(schedule):
    import optax

    s = TrainSettings(lr_schedule=schedule, lr_warmup_steps=3, lr_decay_steps=20)
    rng = np.random.default_rng(1)
    params = {"w": [jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)]}
    state = s.opt.init(params)
    for _ in range(6):
        g = {"w": [jnp.asarray(rng.standard_normal((4, 3)), jnp.float32)]}
        u, ref_state = s.opt.update(g, state, params)
        ref = optax.apply_updates(params, u)
        got, got_state = _adam_update(g, state, params, jnp.bool_(True), s)
        for a, b in zip(jax.tree.leaves((got, got_state)), jax.tree.leaves((ref, ref_state))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)
        same, same_state = _adam_update(g, state, params, jnp.bool_(False), s)
        for a, b in zip(jax.tree.leaves((same, same_state)), jax.tree.leaves((params, state))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        params, state = ref, ref_state


def test_stopped_network_is_frozen():
    s = TrainSettings(
        learning_rate=1e-2,
        es_window=20,
        es_every=10,
        es_min_improvement=0.05,
        max_steps=40,
        batch_size=16,
        val_batch_size=16,
    )
    st = _run_level([0, 1], s, steps=40, chunk=40, sparsity=0.0)
    assert np.asarray(st["stopped"]).all()
    before = jax.tree.map(np.asarray, st["params"])
    st2, (tl, vl) = train_chunk(st, _train_data(), 40, s)
    assert np.isnan(np.asarray(vl)).all()
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(st2["params"])):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_evaluate_matches_direct_mse():
    params = mlp.init_ensemble(network_keys(0, range(3)), SIZES)
    masks = mlp.full_masks(params)
    x, y = _data(1000)
    got = evaluate(params, masks, x, y, "arctan", eval_batch=300)  # 300 does not divide 1000
    for i in range(3):
        p = _take(params, i)
        ref = float(np.mean((np.asarray(mlp.forward(p, _take(masks, i), x)) - y) ** 2))
        assert got[i] == pytest.approx(ref, rel=1e-5)


def _ring(series, step):
    """Ring buffer (1, W) holding ``series`` (chronological, length W) as after ``step`` batches."""
    w = len(series)
    hist = np.empty(w, np.float32)
    hist[(step - w + np.arange(w)) % w] = series
    return hist


@pytest.mark.parametrize("rule", ["noise", "paper"])
def test_noise_aware_stop_waits_on_noisy_improvement_and_stops_on_flat(rule):
    w, step, n = 1000, 1100, 200
    s = TrainSettings(
        es_window=w, es_every=100, es_min_improvement=0.01, es_rule=rule, es_z=2.0, max_steps=10**6
    )
    rng = np.random.default_rng(0)
    t = np.arange(w)
    trend = 1.0 - 0.04 * t / w  # the later half's mean is 2.0 % below the earlier half's

    def fired(base, noise):
        hist = np.stack(
            [_ring(base * (1 + noise * rng.standard_normal(w)), step) for _ in range(n)]
        )
        return int(np.asarray(_stop_rule(jnp.asarray(hist), jnp.full((n,), step), s)).sum())

    improving = fired(trend, 0.2)  # 20 % batch noise: s.e. of the difference ~1.3 %
    flat = fired(np.ones(w), 0.05)  # flat plateau, 5 % batch noise (s.e. ~0.3 %)
    if rule == "noise":
        assert improving <= 0.02 * n, improving  # still improving: (almost) never stops
        assert flat >= 0.8 * n, flat
    else:  # the paper's rule stops a fifth of the still-improving networks on noise alone
        assert improving >= 0.1 * n, improving
        assert flat >= 0.95 * n
    assert fired(np.ones(w), 0.0) == n  # a noiseless plateau always stops


def test_schedules_are_optax_schedules_and_restart():
    import optax

    from mothlab.nets.training import make_schedule, restart_schedule

    cos = make_schedule("cosine", 5e-3, 1000, decay_to=0.01)
    ref = optax.cosine_decay_schedule(5e-3, 1000, alpha=0.01)
    for k in (0, 1, 250, 999, 1000, 5000):
        assert float(cos(k)) == pytest.approx(float(ref(k)), rel=1e-6)
    assert float(cos(1000)) == pytest.approx(5e-5, rel=1e-5)
    wc = make_schedule("warmup_cosine", 1e-2, 100, decay_to=0.1, warmup_steps=10)
    assert float(wc(0)) == 0.0 and float(wc(10)) == pytest.approx(1e-2)
    assert float(wc(100)) == pytest.approx(1e-3, rel=1e-5)
    assert float(make_schedule("constant", 3e-3, 10)(10**6)) == pytest.approx(3e-3)
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("step", 1e-3, 10)
    # the optimizer follows the schedule; restart_schedule resets its count, not Adam's
    s = TrainSettings(
        lr_schedule="cosine",
        lr_decay_steps=50,
        learning_rate=1e-2,
        batch_size=16,
        val_batch_size=16,
        max_steps=40,
        es_window=20,
        es_every=10,
    )
    st = _run_level([0, 1], s, steps=40, chunk=40, sparsity=0.0)
    sched = [
        x
        for x in jax.tree.leaves(
            st["opt"], is_leaf=lambda x: isinstance(x, optax.ScaleByScheduleState)
        )
        if isinstance(x, optax.ScaleByScheduleState)
    ]
    assert sched and (np.asarray(sched[0].count) == 40).all()
    again = restart_schedule(st["opt"])
    assert (np.asarray(again[1].count) == 0).all() and (np.asarray(again[0].count) == 40).all()


def test_fast_arctan_is_arctan_to_float32_round_off():
    # independent reference: numpy's float64 arctan; the derivative must be 1/(1+x^2) exactly
    x = np.concatenate(
        [
            np.linspace(-40, 40, 200_001),
            np.geomspace(1e-30, 1e30, 20_001),
            -np.geomspace(1e-30, 1e30, 20_001),
            [0.0, np.tan(np.pi / 8), np.tan(3 * np.pi / 8), np.inf, -np.inf],
        ]
    ).astype(np.float32)
    got = np.asarray(jax.jit(mlp.fast_arctan)(x), np.float64)
    ref = np.arctan(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - ref) / ulp) < 4  # measured 3.1 ulp
    g = np.asarray(jax.jit(jax.vmap(jax.grad(mlp.fast_arctan)))(x[:5000]), np.float64)
    np.testing.assert_allclose(g, 1 / (1 + x[:5000].astype(np.float64) ** 2), rtol=1e-6)
    assert mlp.ACTIVATIONS["arctan"] is mlp.fast_arctan

    # its one division gives the bits of the former formula with two (the three reductions
    # computed apart)
    def two_divisions(x):
        a = jnp.abs(x)
        big = a > 2.414213562373095
        mid = (a > 0.4142135623730951) & ~big
        one = jnp.ones((), x.dtype)
        r = jnp.where(big, -one / jnp.where(big, a, one), jnp.where(mid, (a - one) / (a + one), a))
        y0 = jnp.where(big, jnp.pi / 2, jnp.where(mid, jnp.pi / 4, 0.0)).astype(x.dtype)
        z = r * r
        p = ((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
        p = p - 3.33329491539e-1
        return jnp.sign(x) * (y0 + p * z * r + r)

    np.testing.assert_array_equal(got.astype(np.float32), np.asarray(jax.jit(two_divisions)(x)))


def test_init_draws_each_layer_as_jax_random_normal_of_its_shape():
    # one vmapped flat draw must give exactly the per-layer draws it replaces
    key = jax.random.PRNGKey(7)
    sizes = [10, 50, 50, 8, 7]
    got = mlp.init_network(key, sizes, "paper")
    keys = jax.random.split(key, len(sizes) - 1)
    for w, k, a, b in zip(got["w"], keys, sizes[:-1], sizes[1:]):
        want = 0.2 * jax.random.normal(k, (a, b), jnp.float32)
        np.testing.assert_array_equal(np.asarray(w), np.asarray(want))
