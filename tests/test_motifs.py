"""Motif counts against brute-force enumeration of node tuples (networkx graphs) and closed forms."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mothlab.analysis.count_kernels import count_canonical_numba
from mothlab.analysis.motifs import (
    MOTIFS,
    canonical,
    count_canonical,
    count_canonical_jax,
    count_motifs,
    dense_closed_forms,
    live_canonical,
    prune_ghost_dead,
)

# ------------------------------------------------------------------------------------------------
# brute force on a networkx DiGraph: nodes ("n", layer, i) and bias nodes ("b", layer)
# ------------------------------------------------------------------------------------------------


def to_graph(masks, biases=None):
    g = nx.DiGraph()
    for l, m in enumerate(masks):
        for i in range(m.shape[0]):
            g.add_node(("n", l, i))
        for j in range(m.shape[1]):
            g.add_node(("n", l + 1, j))
        for i, j in zip(*np.nonzero(m)):
            g.add_edge(("n", l, int(i)), ("n", l + 1, int(j)))
        if biases is not None:
            g.add_node(("b", l))
            for j in np.flatnonzero(biases[l]):
                g.add_edge(("b", l), ("n", l + 1, int(j)))
    return g


def brute_prune(g, n_layers):
    g = g.copy()
    while True:
        gone = [
            v
            for v in g
            if v[0] == "n"
            and 0 < v[1] < n_layers
            and (g.in_degree(v) == 0 or g.out_degree(v) == 0)
            and (g.in_degree(v) + g.out_degree(v) > 0)
        ]
        if not gone:
            return g
        for v in gone:
            g.remove_edges_from(list(g.in_edges(v)) + list(g.out_edges(v)))


def brute_counts(g, chains="paths", converging3="exact"):
    c = dict.fromkeys(MOTIFS, 0)
    c["edges"] = g.number_of_edges()
    for v in g:
        succ, pred = list(g.successors(v)), list(g.predecessors(v))
        c["diverging2"] += len(list(itertools.combinations(succ, 2)))
        c["diverging3"] += len(list(itertools.combinations(succ, 3)))
        c["converging2"] += len(list(itertools.combinations(pred, 2)))
        c["converging3"] += len(
            list(itertools.combinations(pred, 2 if converging3 == "published" else 3))
        )
    p2 = [(a, b, d) for a, b in g.edges for d in g.successors(b)]
    p3 = [(a, b, d, e) for a, b, d in p2 for e in g.successors(d)]
    if chains == "paths":
        c["chain2"], c["chain3"] = len(p2), len(p3)
    else:
        c["chain2"] = len({(p[0], p[-1]) for p in p2})
        c["chain3"] = len({(p[0], p[-1]) for p in p3})
    nodes = list(g)
    for a, b in itertools.combinations(nodes, 2):
        common = set(g.successors(a)) & set(g.successors(b))
        c["bifan"] += len(list(itertools.combinations(common, 2)))
    for a in nodes:
        for b, cc in itertools.combinations(list(g.successors(a)), 2):
            c["biparallel"] += len(set(g.successors(b)) & set(g.successors(cc)))
    return c


@st.composite
def layered(draw, max_layers=4, max_width=5):
    n_layers = draw(st.integers(1, max_layers))
    widths = [draw(st.integers(1, max_width)) for _ in range(n_layers + 1)]
    p = draw(st.floats(0.1, 1.0))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    masks = [rng.random((a, b)) < p for a, b in zip(widths[:-1], widths[1:])]
    with_bias = draw(st.booleans())
    biases = [rng.random(b) < p for b in widths[1:]] if with_bias else None
    return masks, biases


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    net=layered(),
    chains=st.sampled_from(["paths", "pairs"]),
    conv=st.sampled_from(["exact", "published"]),
    prune=st.booleans(),
)
def test_counts_equal_brute_force(net, chains, conv, prune):
    masks, biases = net
    got = count_motifs(masks, biases, chains=chains, converging3=conv, remove_ghost_dead=prune)
    g = to_graph(masks, biases)
    if prune:
        g = brute_prune(g, len(masks))
    assert got == brute_counts(g, chains, conv)
    # the compressed live form (what the null models sample) has the same counts
    pm, pb = prune_ghost_dead(masks, biases) if prune else (masks, biases)
    live = live_canonical(
        [np.asarray(m, bool)[None] for m in pm],
        None if pb is None else [np.asarray(b, bool)[None] for b in pb],
    )
    lc = count_canonical(live, chains, conv)
    assert {k: int(v[0]) for k, v in lc.items()} == got
    # the sparse numba counter (what the null models count with) on both forms
    full = canonical(
        [np.asarray(m, bool)[None] for m in pm],
        None if pb is None else [np.asarray(b, bool)[None] for b in pb],
    )
    for form in (live, full):
        nb = count_canonical_numba(form, chains, conv)
        assert dict(zip(MOTIFS, nb[0].tolist())) == got
    if prune:
        assert all(a[0].any(axis=0).all() and a[0].any(axis=1).all() for a in live)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=layered(max_layers=3, max_width=4))
def test_prune_matches_brute_force_and_is_a_fixed_point(net):
    masks, biases = net
    pm, pb = prune_ghost_dead(masks, biases)
    g = brute_prune(to_graph(masks, biases), len(masks))
    assert set(to_graph(pm, pb).edges) == set(g.edges)
    pm2, pb2 = prune_ghost_dead(pm, pb)
    assert all((a == b).all() for a, b in zip(pm, pm2))


def test_batched_numpy_jax_and_live_forms_agree():
    rng = np.random.default_rng(3)
    widths = [6, 60, 50, 9]
    masks = [rng.random((12, a, b)) < 0.2 for a, b in zip(widths[:-1], widths[1:])]
    biases = [rng.random((12, b)) < 0.5 for b in widths[1:]]
    for chains in ("paths", "pairs"):
        for conv in ("exact", "published"):
            batch = count_motifs(masks, biases, chains=chains, converging3=conv)
            pm, pb = prune_ghost_dead(masks, biases)
            jx = count_canonical_jax(canonical(pm, pb), chains, conv)
            for k in MOTIFS:
                assert batch[k].dtype == np.int64
                assert (jx[k] == batch[k]).all(), k
            for i in (0, 7):
                one = count_motifs(
                    [m[i] for m in masks], [b[i] for b in biases], chains=chains, converging3=conv
                )
                assert all(isinstance(v, int) for v in one.values())
                assert one == {k: int(v[i]) for k, v in batch.items()}
                live = live_canonical([m[i : i + 1] for m in pm], [b[i : i + 1] for b in pb])
                lc = count_canonical(live, chains, conv)
                assert {k: int(v[0]) for k, v in lc.items()} == one
                # every live row and column holds an edge
                assert all(a[0].any(axis=0).all() and a[0].any(axis=1).all() for a in live)


def test_dense_paper_network_closed_forms():
    sizes = [10, 400, 400, 400, 16, 7]
    masks = [np.ones((a, b), bool) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [np.ones(b, bool) for b in sizes[1:]]
    got = count_motifs(masks, biases)
    assert got["edges"] == 331_735
    assert got["diverging2"] == 64_925_877
    assert got["bifan"] == 12_813_935_856
    assert got == dense_closed_forms(sizes, biases=True)
    assert got["biparallel"] > 2**31  # would overflow int32: counted exactly
    assert count_motifs(masks) == dense_closed_forms(sizes, biases=False)
    # the JAX batch counter gives the same exact integers
    jx = count_canonical_jax(canonical([m[None] for m in masks], [b[None] for b in biases]))
    assert {k: int(v[0]) for k, v in jx.items()} == got
    # and so does the sparse numba counter, beyond int32 (1.4e10 bi-parallels)
    nb = count_canonical_numba(canonical([m[None] for m in masks], [b[None] for b in biases]))
    assert dict(zip(MOTIFS, nb[0].tolist())) == got


def test_quirk_options_are_the_published_ones():
    sizes = [3, 4, 5]
    masks = [np.ones((a, b), bool) for a, b in zip(sizes[:-1], sizes[1:])]
    exact = count_motifs(masks)
    pub = count_motifs(masks, chains="pairs", converging3="published")
    assert pub["converging3"] == pub["converging2"] == exact["converging2"]
    assert exact["converging3"] == 4 * 1 + 5 * 4  # C(3,3)·4 + C(4,3)·5
    assert pub["chain2"] == 3 * 5 and exact["chain2"] == 3 * 4 * 5


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((3, 3)), "list"),
        ([np.ones((2, 3)), np.ones((4, 2))], "chain"),
        ([np.full((2, 2), 0.5)], "only 0 and 1"),
        ([np.ones((2, 2, 2)), np.ones((3, 2, 2))], "networks"),
        ([], "empty"),
    ],
)
def test_bad_input_raises_clear_valueerror(bad, match):
    with pytest.raises(ValueError, match=match):
        count_motifs(bad)


def test_bad_options_and_biases():
    m = [np.ones((2, 3))]
    with pytest.raises(ValueError, match="chains"):
        count_motifs(m, chains="walks")
    with pytest.raises(ValueError, match="converging3"):
        count_motifs(m, converging3="C(n,2)")
    with pytest.raises(ValueError, match="biases"):
        count_motifs(m, biases=[np.ones(2)])
