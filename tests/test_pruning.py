"""Pruning: exact per-layer counts, nested masks, optimizer-state reset, as-published defects."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mothlab.nets import PAPER_SCHEDULE, mlp, zhu_gupta_schedule
from mothlab.nets.pruning import n_kept, n_pruned, prune_ensemble
from mothlab.nets.training import TrainSettings, init_state, network_keys, prune_state

SIZES = [10, 7, 5, 7]


def _random_params(seed, n=3, sizes=SIZES):
    return mlp.init_ensemble(network_keys(seed, range(n)), sizes)


def test_counting_rule():
    assert n_pruned(10, 0.15) == 2  # 1.5 rounds half up
    assert n_pruned(112, 0.93) == 104 and n_kept(112, 0.93) == 8  # Table 1's last layer
    assert n_kept(160000, 0.93) == 11200
    assert n_kept(7, 0.98) == 0 and n_kept(5, 0.0) == 5


@pytest.mark.parametrize("mode", ["layerwise", "global"])
@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 1000))
def test_nested_masks_exact_counts_every_level(mode, seed):
    params = _random_params(seed)
    masks = mlp.full_masks(params)
    rng = np.random.default_rng(seed)
    total = sum(mlp.n_weights(SIZES))
    for s in PAPER_SCHEDULE:
        new = prune_ensemble(params, masks, s, mode=mode)
        for _l, (w, m_old, m_new) in enumerate(zip(params["w"], masks["w"], new["w"])):
            m_old, m_new = np.asarray(m_old), np.asarray(m_new)
            assert not np.any(m_new & ~m_old), "a pruned weight came back"
            if mode == "layerwise":
                assert (m_new.sum((1, 2)) == n_kept(w[0].size, s)).all()
            # kept weights are the largest surviving magnitudes (brute-force check)
            a = np.abs(np.asarray(w))
            for i in range(a.shape[0]):
                if m_new[i].any() and (m_old[i] & ~m_new[i]).any() and mode == "layerwise":
                    assert a[i][m_new[i]].min() >= a[i][m_old[i] & ~m_new[i]].max()
        if mode == "global":
            kept = sum(np.asarray(m).sum((1, 2)) for m in new["w"])
            assert (kept == n_kept(total, s)).all()
        for b, mb in zip(params["b"], new["b"]):
            assert (np.asarray(mb).sum(1) == n_kept(b.shape[1], s)).all()
        masks = new
        # retraining moves the weights between levels; nesting must hold whatever they do
        params = jax.tree.map(
            lambda p: p + 0.05 * jnp.asarray(rng.standard_normal(p.shape), p.dtype), params
        )


def test_as_published_masks_not_nested_and_bias_cutoff():
    params = _random_params(1)
    masks = mlp.full_masks(params)
    m1 = prune_ensemble(params, masks, 0.5, as_published=True)
    # swap magnitudes: weights pruned at level 1 become the largest ones
    w0 = params["w"][0]
    flipped = jnp.where(m1["w"][0], 0.001 * w0, 10.0 * w0)
    params2 = {"w": [flipped] + params["w"][1:], "b": params["b"]}
    m2 = prune_ensemble(params2, m1, 0.6, as_published=True)
    assert np.any(np.asarray(m2["w"][0]) & ~np.asarray(m1["w"][0])), "defect 2 not reproduced"
    m2n = prune_ensemble(params2, m1, 0.6)
    assert not np.any(np.asarray(m2n["w"][0]) & ~np.asarray(m1["w"][0]))
    # defect 1: biases (all 0 at init) fall below the weight cutoff and vanish
    assert not np.asarray(m1["b"][0]).any()


def test_bias_pruning_none_keeps_biases():
    params = _random_params(2)
    new = prune_ensemble(params, mlp.full_masks(params), 0.9, bias_pruning="none")
    assert all(np.asarray(mb).all() for mb in new["b"])


def test_optimizer_state_of_pruned_weights_reset():
    s = TrainSettings()
    keys = network_keys(0, range(2))
    state = init_state(keys, SIZES, s)
    # fill Adam's moments with non-zeros, as after training
    fake = jax.tree.map(lambda a: jnp.ones_like(a) if a.dtype == jnp.float32 else a, state["opt"])
    state = dict(state, opt=fake)
    pruned = prune_state(state, 0.5, "layerwise", "magnitude", s)
    adam = pruned["opt"][0]
    for tree in (adam.mu, adam.nu):
        for leaf, m in zip(jax.tree.leaves(tree), jax.tree.leaves(pruned["masks"])):
            leaf, m = np.asarray(leaf), np.asarray(m)
            assert (leaf[~m] == 0).all() and (leaf[m] == 1).all()
    assert (np.asarray(adam.count) == np.asarray(state["opt"][0].count)).all()
    for w, m in zip(pruned["params"]["w"], pruned["masks"]["w"]):
        assert (np.asarray(w)[~np.asarray(m)] == 0).all()
    # as published: moments survive pruning (defect 3)
    pub = TrainSettings(as_published=True)
    kept = prune_state(state, 0.5, "layerwise", "magnitude", pub)
    assert all((np.asarray(x) == 1).all() for x in jax.tree.leaves(kept["opt"][0].mu))


def test_zhu_gupta_schedule():
    s = zhu_gupta_schedule(0.95, 10)
    assert s[0] == 0.0 and s[-1] == 0.95 and all(b > a for a, b in zip(s, s[1:]))
    with pytest.raises(ValueError, match="final"):
        zhu_gupta_schedule(1.2, 5)


def test_as_published_biases_survive_the_dense_level_and_mostly_vanish_at_15_percent():
    """The authors' result files: every bias kept at the dense level, most gone after the first
    (15 %) step, where the weight cutoff (kept strictly above) leaves one weight fewer than the
    exact rule in each layer."""
    params = _random_params(3, n=4, sizes=[10, 40, 30, 7])
    rng = np.random.default_rng(0)
    # trained biases are small next to the weights (N(0, 1)/5): here N(0, 0.02)
    params = {
        "w": params["w"],
        "b": [jnp.asarray(0.02 * rng.standard_normal(b.shape), b.dtype) for b in params["b"]],
    }
    full = mlp.full_masks(params)
    dense = prune_ensemble(params, full, 0.0, as_published=True)
    assert all(np.asarray(m).all() for m in jax.tree.leaves(dense))
    m1 = prune_ensemble(params, dense, 0.15, as_published=True)
    kept_b = sum(np.asarray(mb).sum() for mb in m1["b"])
    total_b = sum(np.asarray(mb).size for mb in m1["b"])
    assert kept_b < 0.5 * total_b, (kept_b, total_b)
    for w, mw in zip(params["w"], m1["w"]):
        assert (np.asarray(mw).sum((1, 2)) == n_kept(w[0].size, 0.15) - 1).all()
    exact = prune_ensemble(params, dense, 0.15)
    assert all((np.asarray(mb).sum(1) == n_kept(mb.shape[1], 0.15)).all() for mb in exact["b"])


def test_prune_state_compiles_once_for_a_whole_schedule():
    # the kept counts are data: a schedule of levels reuses one compiled pruning step, and
    # each level still keeps exactly n_kept weights (nested in the previous mask)
    from mothlab.nets.pruning import _prune_state

    s = TrainSettings()
    state = init_state(network_keys(0, range(2)), [10, 9, 8, 7], s)
    state = prune_state(state, 0.15, "layerwise", "magnitude", s)
    before = _prune_state._cache_size()
    prev = state["masks"]
    for sp in (0.35, 0.5, 0.9, 0.98):
        state = prune_state(state, sp, "layerwise", "magnitude", s)
        for m, old in zip(state["masks"]["w"], prev["w"]):
            m, old = np.asarray(m), np.asarray(old)
            assert (m.sum((1, 2)) == n_kept(m[0].size, sp)).all() and not (m & ~old).any()
        for mb in state["masks"]["b"]:
            assert (np.asarray(mb).sum(1) == n_kept(mb.shape[1], sp)).all()
        prev = state["masks"]
    assert _prune_state._cache_size() == before
