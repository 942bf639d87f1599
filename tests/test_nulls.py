"""Null models: exact constraints on every sample, uniformity by chi-square on enumerable layers,
analytic null-(a) moments equal to exact enumeration."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from mothlab.analysis.motifs import MOTIFS, count_canonical
from mothlab.analysis.nulls import (
    as_published_layers,
    degree_layers,
    degree_mixing,
    edges_moments,
    live_node_layer,
    live_node_layers,
    sample_null,
    uniform_layers,
)


def all_layers(r, c, e):
    """Every r×c 0/1 matrix with e ones, bool (n, r, c)."""
    out = []
    for cells in itertools.combinations(range(r * c), e):
        m = np.zeros(r * c, bool)
        m[list(cells)] = True
        out.append(m.reshape(r, c))
    return np.array(out)


def chi2_uniform(samples, support):
    """p-value of a chi-square test that `samples` (n, r, c) are uniform over `support`."""
    keys = {m.tobytes(): i for i, m in enumerate(support)}
    idx = np.array([keys[s.tobytes()] for s in samples])  # KeyError = sample outside the support
    obs = np.bincount(idx, minlength=len(support))
    return stats.chisquare(obs).pvalue


def test_uniform_layers_exact_counts_and_uniform():
    shapes = [(2, 3, 3), (3, 4, 10), (5, 1, 2), (40, 30, 100)]
    s = uniform_layers(shapes, 500, seed=1, backend="numpy")
    for (r, c, e), a in zip(shapes, s):
        assert a.shape == (500, r, c) and a.dtype == bool
        assert (a.sum(axis=(1, 2)) == e).all()
    support = all_layers(2, 3, 3)  # 20 matrices
    for backend in ("numpy", "jax"):  # the same algorithm in both
        s = uniform_layers([(2, 3, 3)], 3000, seed=2, backend=backend)[0]
        assert (s.sum(axis=(1, 2)) == 3).all()
        assert chi2_uniform(s, support) > 1e-3


@pytest.mark.parametrize("shape", [(3, 3, 4), (2, 5, 6), (5, 2, 6), (2, 3, 4), (3, 3, 7)])
def test_live_nodes_uniform_on_enumerable_layers(shape):
    r, c, e = shape
    support = [m for m in all_layers(r, c, e) if m.any(0).all() and m.any(1).all()]
    rng = np.random.default_rng(5)
    s = live_node_layer(rng, 3000, r, c, e)
    assert (s.sum(axis=(1, 2)) == e).all()
    assert s.any(axis=2).all() and s.any(axis=1).all()
    assert chi2_uniform(s, support) > 1e-3


def test_live_nodes_constraints_on_a_sparse_wide_layer():
    # the paper's first layer after pruning: few inputs, many hidden nodes, ~1.4 edges per node
    s = live_node_layers([(10, 200, 280), (200, 50, 600), (50, 7, 60)], 50, seed=3)
    for a, e in zip(s, (280, 600, 60)):
        assert (a.sum(axis=(1, 2)) == e).all()
        assert a.any(axis=2).all() and a.any(axis=1).all()


def test_live_nodes_refuses_impossible_layer():
    with pytest.raises(ValueError, match="edges"):
        live_node_layer(np.random.default_rng(0), 10, 3, 4, 3)


def test_degrees_keep_every_degree_and_are_uniform():
    a = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], bool)
    support = [
        m
        for m in all_layers(3, 3, 5)
        if (m.sum(0) == a.sum(0)).all() and (m.sum(1) == a.sum(1)).all()
    ]
    assert len(support) > 2
    for backend in ("numpy", "jax", "numba"):  # numba is a dependency: never skipped
        n = {"numpy": 2000, "jax": 600, "numba": 5000}[backend]
        s = degree_layers([a], n, seed=4, backend=backend)[0]
        assert (s.sum(axis=1) == a.sum(0)).all() and (s.sum(axis=2) == a.sum(1)).all()
        assert chi2_uniform(s, support) > 1e-3
    rng = np.random.default_rng(1)
    big = rng.random((30, 20)) < 0.3
    s = degree_layers([big], 20, seed=0)[0]
    assert (s.sum(axis=1) == big.sum(0)).all() and (s.sum(axis=2) == big.sum(1)).all()
    assert (s != big).any()  # it moved


@pytest.mark.parametrize(
    "a",
    [
        # 4x4 with margins (2, 1, 2, 1) / (1, 2, 2, 1): 20 matrices, uneven in-degrees
        np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0]], bool),
        # 3x5, two full rows' worth of edges spread unevenly: rows (3, 2, 2), cols (2, 1, 2, 1, 1)
        np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 1]], bool),
    ],
)
def test_degree_chains_uniform_over_enumerated_margins(a):
    """The compiled chains sample uniformly among every matrix with the real layer's margins
    (enumerated), and keep the margins of each sample exactly."""
    r, c = a.shape
    support = [
        m
        for m in all_layers(r, c, int(a.sum()))
        if (m.sum(0) == a.sum(0)).all() and (m.sum(1) == a.sum(1)).all()
    ]
    assert len(support) > 5
    s = degree_layers([a], 200 * len(support), seed=11, backend="numba")[0]
    assert (s.sum(axis=1) == a.sum(0)).all() and (s.sum(axis=2) == a.sum(1)).all()
    assert chi2_uniform(s, support) > 1e-3


def test_degree_chains_reproducible_and_independent_of_threads():
    import numba

    rng = np.random.default_rng(2)
    layers = [rng.random((12, 30)) < 0.2, rng.random((30, 9)) < 0.3]
    one = degree_layers(layers, 40, seed=5, backend="numba")
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = degree_layers(layers, 40, seed=5, backend="numba")
    finally:
        numba.set_num_threads(n)
    other = degree_layers(layers, 40, seed=6, backend="numba")
    for a, x, y, z in zip(layers, one, single, other):
        np.testing.assert_array_equal(x, y)
        assert (x != z).any()
        assert (x.sum(axis=1) == a.sum(0)).all() and (x.sum(axis=2) == a.sum(1)).all()
    # chains are independent: no two samples of a 360-cell layer coincide
    flat = one[0].reshape(40, -1)
    assert len({row.tobytes() for row in flat}) == 40


def test_degree_mixing_diagnostic_finds_the_chain_length():
    rng = np.random.default_rng(3)
    a = rng.random((40, 60)) < 0.1
    m = degree_mixing([a], n_chains=48, checkpoints=(0.05, 0.25, 1, 3, 10, 30), seed=1)
    L = m["layers"][0]
    assert L["edges"] == int(a.sum()) and m["checkpoints"] == [0.05, 0.25, 1, 3, 10, 30]
    ret = L["retained"]
    assert ret[0] > 0.85 and ret[-1] < 0.3  # the real edges are swapped away ...
    assert abs(ret[-2] - ret[-1]) < 4 * (
        L["retained_se"][-2] + L["retained_se"][-1]
    )  # ... and level
    # the bi-fan statistic is the exact count of the layer (checked on the start state)
    from mothlab.analysis.nulls import _pair_overlap

    g = a.astype(int) @ a.T.astype(int)
    exact = sum(g[i, k] * (g[i, k] - 1) // 2 for i in range(40) for k in range(i + 1, 40))
    assert _pair_overlap(a[None])[0] == exact
    assert L["mixed_at"] is not None and 0.25 < L["mixed_at"] <= 10
    assert m["mixed_at_max"] == L["mixed_at"]
    with pytest.raises(ValueError, match="n_chains"):
        degree_mixing([a], n_chains=1)


def test_as_published_generator_runs_and_is_flagged_non_uniform():
    s = as_published_layers([(3, 5, 7)], 20000, seed=0)[0]
    assert s.any(axis=1).all()  # every target got a source
    assert (s.sum(axis=(1, 2)) == 7).all()
    # not uniform over the matrices with every target covered: P(M) ∝ Π_j indeg_j, so column
    # degrees are more even than under the uniform law (exact mean by enumeration)
    support = np.array([m for m in all_layers(3, 5, 7) if m.any(0).all()])
    exact = (support.sum(axis=1) ** 2).sum(axis=1).mean()
    stat = (s.sum(axis=1) ** 2).sum(axis=1)
    assert (exact - stat.mean()) / (stat.std() / np.sqrt(len(stat))) > 6


def test_sample_null_checks_arguments():
    layer = np.array([[1, 0], [1, 1]], bool)
    with pytest.raises(ValueError, match="null"):
        sample_null("random", [layer], 2)
    with pytest.raises(ValueError, match="n_samples"):
        sample_null("edges", [layer], 0)
    with pytest.raises(ValueError, match="live"):
        sample_null("live_nodes", [np.array([[1, 0], [0, 0]], bool)], 2)


def exact_moments(shapes):
    """Mean and variance of every count by enumerating every network of the null."""
    per_layer = [all_layers(r, c, e) for r, c, e in shapes]
    idx = np.array(list(itertools.product(*[range(len(p)) for p in per_layer])))
    nets = [p[idx[:, l]] for l, p in enumerate(per_layer)]
    res = {}
    for conv in ("exact", "published"):
        cnt = count_canonical(nets, converging3=conv)
        res[conv] = {
            k: (
                Fraction(int(v.sum()), len(v)),
                Fraction(int((v.astype(object) ** 2).sum()), len(v))
                - Fraction(int(v.sum()), len(v)) ** 2,
            )
            for k, v in cnt.items()
        }
    return res


@pytest.mark.parametrize(
    "shapes",
    [
        [(2, 2, 2), (3, 2, 3), (3, 2, 2)],  # bias rows in layers 1 and 2
        [(2, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 1), (2, 1, 1)],  # five layers: distant chains
        [(1, 3, 2), (4, 2, 3), (2, 2, 2), (3, 1, 2)],
    ],
)
def test_edges_moments_equal_exact_enumeration(shapes):
    ex = exact_moments(shapes)
    for conv in ("exact", "published"):
        an = edges_moments(shapes, converging3=conv)
        for k in MOTIFS:
            assert an[k] == ex[conv][k], (k, conv, an[k], ex[conv][k])


def test_edges_moments_match_sampling_at_moderate_size():
    shapes = [(6, 12, 30), (13, 10, 40), (11, 4, 20)]
    an = edges_moments(shapes)
    s = uniform_layers(shapes, 4000, seed=9)
    c = count_canonical(s)
    for k in MOTIFS:
        m, v = float(an[k][0]), float(an[k][1])
        x = c[k].astype(float)
        if v == 0:
            assert (x == m).all()
            continue
        assert abs(x.mean() - m) < 5 * np.sqrt(v / len(x)), k
        assert abs(x.var(ddof=1) / v - 1) < 0.15, k


def test_both_edge_nulls_zscore_moments_equal_enumeration_of_their_support():
    """A hand-made network with a ghost hidden node: "edges_live_nodes" places the edges among
    the 2 + 2 + 2 live nodes, "edges_whole_layer" over the full 2×3 and 3×2 layers. The exact
    moments used by zscores equal the mean and variance over every network of each support."""
    from mothlab.analysis.zscores import zscores

    m0 = np.array([[1, 1, 0], [1, 0, 0]], bool)  # hidden node 2 has no input: a ghost
    m1 = np.array([[1, 0], [1, 1], [1, 1]], bool)  # so its two outputs are removed
    supports = {
        "edges_live_nodes": [(2, 2, 3), (2, 2, 3)],  # E = 3 and 3 after removal
        "edges_whole_layer": [(2, 3, 3), (3, 2, 3)],
    }
    for null, shapes in supports.items():
        ex = exact_moments(shapes)["exact"]
        z = zscores([m0, m1], null=null)
        assert set(z.method.values()) == {"analytic"} and z.n_random == 0
        for j, k in enumerate(MOTIFS):
            mean, var = ex[k]
            assert z.mean[0, j] == pytest.approx(float(mean), rel=1e-12, abs=1e-12), (null, k)
            assert z.sd[0, j] == pytest.approx(float(var) ** 0.5, rel=1e-12, abs=1e-12), (null, k)
    # the two supports give different answers for the same real network
    zl = zscores([m0, m1], null="edges_live_nodes")
    zw = zscores([m0, m1], null="edges_whole_layer")
    assert not np.allclose(zl.mean, zw.mean)
    np.testing.assert_array_equal(zl.counts, zw.counts)


def test_null_names_say_what_they_keep_and_old_name_maps():
    from mothlab.analysis.nulls import NULL_ALIASES, NULL_LABELS, NULLS, resolve_null

    assert set(NULL_LABELS) == set(NULLS)
    assert NULL_LABELS["edges_live_nodes"] == "edges among live nodes"
    assert NULL_LABELS["edges_whole_layer"] == "edges over the whole layer"
    assert (
        "live nodes" in NULLS["edges_live_nodes"] and "all its cells" in NULLS["edges_whole_layer"]
    )
    assert resolve_null("edges") == "edges_live_nodes" == NULL_ALIASES["edges"]
    with pytest.raises(ValueError, match="edges_whole_layer"):
        resolve_null("erdos")
