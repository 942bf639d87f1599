"""``mothlab bench motifs``: motif counts and z-scores of one 93%-sparse paper-width network.

The network: widths 10-400-400-400-16-7, weights N(0, 1) (seeded), each layer magnitude-pruned to
7% of its weights (no biases unless ``--biases``). Compared, on the same network, with an in-run
re-implementation of the original approach (SCIENCE.md §5 items 7–9): Python loops over nodes and
node pairs (chains as distinct endpoint pairs, 3rd-order converging with C(n, 2)) and an ad hoc
per-edge generator (every live target gets one random source, the rest of the edges fall on random
cells). The original-style 1000-sample z-score time is extrapolated from a few timed samples.

Short timings are the best of several runs (the machine may be shared). Rows: exact counts; z-scores under null (a) from analytic moments; 1000-sample z-scores under
null (b); a 350-network × 18-level sweep under null (a) (estimated from a smaller batch per level
unless ``--sweep-networks 350``); 1000-sample z-scores under the degree-preserving null (c), with
its sampling time beside null (b)'s and a mixing diagnostic of its swap chains
(:func:`mothlab.analysis.nulls.degree_mixing`: the swaps per edge after which the chains' statistics
stop moving).
"""

from __future__ import annotations

import argparse
import time
from math import comb

import numpy as np

PAPER_WIDTHS = (10, 400, 400, 400, 16, 7)
PAPER_SCHEDULE = (
    0.0,
    0.15,
    0.25,
    0.35,
    0.45,
    0.55,
    0.65,
    0.75,
    0.85,
    0.90,
    0.91,
    0.92,
    0.93,
    0.94,
    0.95,
    0.96,
    0.97,
    0.98,
)


def register(sub) -> None:
    p = sub.add_parser(
        "motifs",
        help="motif counts and z-scores vs the original loop style",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random network (default 0)")
    p.add_argument("--sparsity", type=float, default=0.93, help="per-layer sparsity (0.93)")
    p.add_argument("--n-random", type=int, default=1000, help="null samples (default 1000)")
    p.add_argument(
        "--orig-samples",
        type=int,
        default=2,
        help="original-style null samples actually timed (extrapolated; default 2)",
    )
    p.add_argument(
        "--n-degrees",
        type=int,
        default=1000,
        help="null (c) samples timed (0 skips; default 1000, reported per 1000)",
    )
    p.add_argument(
        "--mixing-chains",
        type=int,
        default=32,
        help="chains of null (c)'s mixing diagnostic (0 skips; default 32)",
    )
    p.add_argument("--record", default=None, help="record path (default assets/bench/motifs.json)")
    p.add_argument(
        "--sweep-networks",
        type=int,
        default=8,
        help="networks per level actually run in the sweep (extrapolated to 350)",
    )
    p.add_argument("--biases", action="store_true", help="add unpruned bias nodes")
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="runs of the null (b) z-scores; the best time is reported (default 2)",
    )
    p.set_defaults(func=run)


def pruned_network(widths=PAPER_WIDTHS, sparsity=0.93, seed=0, n_networks=None):
    """Magnitude-pruned random network(s): list of bool (n_in, n_out) (or (n, n_in, n_out))."""
    rng = np.random.default_rng(seed)
    shape = () if n_networks is None else (n_networks,)
    out = []
    for a, b in zip(widths[:-1], widths[1:]):
        w = np.abs(rng.standard_normal((*shape, a * b)))
        keep = int(round((1 - sparsity) * a * b))
        if keep == 0:
            out.append(np.zeros((*shape, a, b), bool))
            continue
        idx = np.argpartition(-w, keep - 1, axis=-1)[..., :keep]
        m = np.zeros_like(w, dtype=bool)
        np.put_along_axis(m, idx, True, axis=-1)
        out.append(m.reshape(*shape, a, b))
    return out


# ------------------------------------------------------------------------------------------------
# the original approach, re-implemented loop style (for timing and as a cross-check)
# ------------------------------------------------------------------------------------------------


def original_counts(layers):
    """Loop-style counts of one network in canonical form (list of bool (r, c)), with the
    published conventions: chains as distinct (source, target) pairs, converging3 = C(n, 2)."""
    from mothlab.analysis import MOTIFS

    c = dict.fromkeys(MOTIFS, 0)
    L = len(layers)
    for A in layers:
        for i in range(A.shape[0]):  # every source node
            d = int(A[i].sum())
            c["edges"] += d
            c["diverging2"] += comb(d, 2)
            c["diverging3"] += comb(d, 3)
        for j in range(A.shape[1]):  # every target node
            d = int(A[:, j].sum())
            c["converging2"] += comb(d, 2)
            c["converging3"] += comb(d, 2)
        for i in range(A.shape[0]):  # every pair of source nodes
            for k in range(i + 1, A.shape[0]):
                c["bifan"] += comb(int((A[i] & A[k]).sum()), 2)
    for l in range(L - 1):
        A, B = layers[l], layers[l + 1][: layers[l].shape[1]]
        for a in range(A.shape[0]):
            for d in range(B.shape[1]):
                n = int((A[a] & B[:, d]).sum())
                c["chain2"] += n > 0
                c["biparallel"] += comb(n, 2)
    for l in range(L - 2):
        A = layers[l]
        B = layers[l + 1][: A.shape[1]]
        C = layers[l + 2][: B.shape[1]]
        for a in range(A.shape[0]):
            reach = (A[a].astype(int) @ B) > 0
            for e in range(C.shape[1]):
                c["chain3"] += bool((reach & C[:, e]).any())
    return c


def original_generator(rng, shapes_edges):
    """The ad hoc generator, edge by edge in Python: each target gets one random source, the
    remaining edges fall on random cells (a repeat is retried)."""
    out = []
    for r, c, e in shapes_edges:
        m = np.zeros((r, c), bool)
        n = 0
        for j in range(c):
            m[rng.integers(r), j] = True
            n += 1
        while n < e:
            i, j = rng.integers(r), rng.integers(c)
            if not m[i, j]:
                m[i, j] = True
                n += 1
        out.append(m)
    return out


#: The motifs as directed graphs on 3 or 4 nodes (edges between node numbers), for igraph's
#: isomorphism classes. In a layered feed-forward graph every occurrence is induced (no other edge
#: can join its nodes), so igraph's induced-subgraph census equals mothlab's raw counts.
IGRAPH_SHAPES = {
    "diverging2": (3, [(0, 1), (0, 2)]),
    "converging2": (3, [(0, 2), (1, 2)]),
    "chain2": (3, [(0, 1), (1, 2)]),
    "diverging3": (4, [(0, 1), (0, 2), (0, 3)]),
    "converging3": (4, [(0, 3), (1, 3), (2, 3)]),
    "chain3": (4, [(0, 1), (1, 2), (2, 3)]),
    "bifan": (4, [(0, 2), (0, 3), (1, 2), (1, 3)]),
    "biparallel": (4, [(0, 1), (0, 2), (1, 3), (2, 3)]),
}


def igraph_graph(masks):
    """A directed igraph Graph of a layered network (list of bool (n_l, n_{l+1})), nodes numbered
    layer after layer."""
    import igraph as ig

    offsets = np.cumsum([0] + [m.shape[0] for m in masks] + [masks[-1].shape[1]])
    edges = []
    for l, m in enumerate(masks):
        src, dst = np.nonzero(m)
        edges.append(np.c_[src + offsets[l], dst + offsets[l + 1]])
    return ig.Graph(n=int(offsets[-1]), edges=np.concatenate(edges).tolist(), directed=True)


def igraph_counts(graph, size: int) -> dict[str, int]:
    """mothlab's motifs of ``size`` nodes counted by igraph's ``motifs_randesu`` (exact census)."""
    import igraph as ig

    census = graph.motifs_randesu(size=size)
    out = {}
    for name, (n, edges) in IGRAPH_SHAPES.items():
        if n == size:
            out[name] = int(census[ig.Graph(n=n, edges=edges, directed=True).isoclass()])
    return out


def _best(fn, repeats):
    """Best wall time of ``repeats`` runs (the machine is shared: the minimum is the cost) and the
    last result."""
    best, res = float("inf"), None
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def run(args) -> int:

    from mothlab.analysis import motifs as M
    from mothlab.analysis.zscores import zscores
    from mothlab.bench import load_average
    from mothlab.progress import Progress, tqdm_progress

    load0 = load_average()
    bar = tqdm_progress("bench motifs")
    progress = bar.__enter__()

    def _stage(fraction, what):
        progress(Progress(fraction, what))
        if fraction >= 1.0:
            bar.__exit__(None, None, None)

    masks = pruned_network(sparsity=args.sparsity, seed=args.seed)
    biases = [np.ones(b, bool) for b in PAPER_WIDTHS[1:]] if args.biases else None
    ms, bs, _ = M.normalise_masks(masks, biases)
    ms, bs = M.prune_batched(ms, bs)
    live = M.live_canonical(ms, bs)
    live2 = [a[0] for a in live]
    se = [(a.shape[0], a.shape[1], int(a.sum())) for a in live2]
    rows = []

    _stage(0.0, "counts")
    # --- counts --------------------------------------------------------------------------------
    M.count_motifs(masks, biases, chains="pairs", converging3="published")  # warm-up/compile
    t_count, ours = _best(
        lambda: M.count_motifs(masks, biases, chains="pairs", converging3="published"), 5
    )
    t = time.perf_counter()
    orig = original_counts(live2)
    t_count_orig = time.perf_counter() - t
    if orig != ours:
        raise RuntimeError(f"count mismatch with the loop re-implementation: {orig} vs {ours}")
    rows.append(("exact counts (published options)", t_count, t_count_orig, "", "measured"))

    _stage(0.05, "igraph's generic")
    # --- igraph's generic motif census, the tool a user would reach for -----------------------
    try:
        import igraph  # noqa: F401

        have_igraph = True
    except ImportError:
        have_igraph = False
        print("igraph not installed (pip install 'mothlab[bench]'): its rows are left out")
    if have_igraph and not args.biases:
        raw = M.count_motifs(masks, None, remove_ghost_dead=False)
        g = igraph_graph(masks)
        for size in (3, 4):
            t = time.perf_counter()
            got = igraph_counts(g, size)
            t_ig = time.perf_counter() - t
            t_ml, _ = _best(lambda: M.count_motifs(masks, None, remove_ghost_dead=False), 3)
            same = all(got[k] == int(raw[k]) for k in got)
            if not same:
                raise RuntimeError(
                    f"igraph census differs from mothlab's raw counts: {got} vs "
                    f"{ {k: int(raw[k]) for k in got} }"
                )
            rows.append(
                (
                    f"igraph motifs_randesu size {size} (vs all counts)",
                    t_ml,
                    t_ig,
                    "",
                    "igraph; counts equal",
                )
            )

    _stage(0.3, "null (a), analytic")
    # --- null (a), analytic --------------------------------------------------------------------
    zscores(masks, biases, null="edges_live_nodes")  # compile the batch counter for this shape
    t_a, za = _best(lambda: zscores(masks, biases, null="edges_live_nodes"), 5)

    _stage(0.35, "original style")
    # --- original style: generator + loop counts per sample (extrapolated) ---------------------
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    for _ in range(args.orig_samples):
        original_counts(original_generator(rng, se))
    t_orig_sample = (time.perf_counter() - t) / args.orig_samples
    t_orig_z = t_orig_sample * args.n_random
    rows.append(
        (
            "z-scores null (a), analytic",
            t_a,
            t_orig_z,
            "<= 0.1 s",
            f"orig: {args.n_random} samples extrapolated",
        )
    )

    _stage(0.45, "null (b), sampled")
    # --- null (b), sampled -----------------------------------------------------------------------
    zscores(masks, biases, null="live_nodes", n_random=args.n_random, seed=args.seed + 1)  # warm
    t_b, zb = _best(
        lambda: zscores(masks, biases, null="live_nodes", n_random=args.n_random, seed=args.seed),
        args.repeats,
    )
    rows.append(
        (
            f"z-scores null (b), {args.n_random} samples",
            t_b,
            t_orig_z,
            "<= 5 s, >= 20x",
            "orig extrapolated",
        )
    )

    _stage(0.6, "sweep: 350")
    # --- sweep: 350 networks x 18 levels under null (a) ------------------------------------------
    n_run = max(1, min(args.sweep_networks, 350))
    t = time.perf_counter()
    for i, s in enumerate(PAPER_SCHEDULE):
        nets = pruned_network(sparsity=s, seed=1000 + i, n_networks=n_run)
        zscores(
            nets,
            None if biases is None else [np.ones((n_run, b), bool) for b in PAPER_WIDTHS[1:]],
            null="edges_live_nodes",
        )
    t_sweep_run = time.perf_counter() - t
    t_sweep = t_sweep_run * 350 / n_run
    t_sweep_orig = t_orig_z * 350 * len(PAPER_SCHEDULE)
    rows.append(
        (
            "sweep 350 nets x 18 levels, null (a)",
            t_sweep,
            t_sweep_orig,
            "<= 600 s",
            "measured" if n_run == 350 else f"ran {n_run}/level, x{350 / n_run:.0f}",
        )
    )

    _stage(0.8, "null (c)")
    # --- null (c), degree-preserving swaps -------------------------------------------------------
    from mothlab.analysis.nulls import degree_layers, degree_mixing, live_node_layers

    t_c = t_c_sample = t_b_sample = None
    mixing = None
    if args.n_degrees > 0:
        zscores(masks, biases, null="degrees", n_random=min(args.n_degrees, 50), seed=1)  # warm
        t_c, _ = _best(
            lambda: zscores(masks, biases, null="degrees", n_random=args.n_degrees, seed=args.seed),
            1,
        )
        per = 1000 / args.n_degrees
        t_c_sample, _ = _best(lambda: degree_layers(live2, args.n_degrees, seed=args.seed), 1)
        t_b_sample, _ = _best(lambda: live_node_layers(se, args.n_degrees, seed=args.seed), 1)
        rows.append(
            (
                f"z-scores null (c) degrees, {args.n_degrees} samples",
                t_c,
                t_b,
                "1000 in <= 5 s",
                f"other: null (b) z; = {t_c * per:.1f} s per 1000",
            )
        )
        rows.append(
            (
                f"sampling only, null (c) vs (b), {args.n_degrees}",
                t_c_sample,
                t_b_sample,
                "",
                "other: null (b) sampler",
            )
        )
    if args.mixing_chains > 0:
        _stage(0.9, "null (c) mixing")
        t = time.perf_counter()
        mixing = degree_mixing(
            live2, n_chains=args.mixing_chains, checkpoints=(0.5, 1, 2, 5, 10, 20), seed=3
        )
        t_mix = time.perf_counter() - t
        m = mixing["mixed_at_max"]
        rows.append(
            (
                f"null (c) mixing diagnostic, {args.mixing_chains} chains",
                t_mix,
                float("nan"),
                "mixed <= 10",
                f"mixed at {m} swaps/edge (default 10)" if m else "not mixed by 10 swaps/edge",
            )
        )

    _stage(1.0, "table")
    # --- table -----------------------------------------------------------------------------------
    from mothlab.bench import command_line, load_average, machine, write_record

    info = machine()
    print(
        f"mothlab bench motifs — one {args.sparsity:.0%}-sparse network "
        f"{'-'.join(map(str, PAPER_WIDTHS))} (seed {args.seed}, biases: "
        f"{'yes' if args.biases else 'no'}), live layers {se}; {info['device']}, "
        f"{info['cores']} cores, load {load_average()}"
    )
    print(f"{'task':<48} {'mothlab':>10} {'other':>10} {'ratio':>8}  {'target':<15} other is")
    table = []
    for name, a, b, target, note in rows:
        ratio = b / a if np.isfinite(b) else float("nan")
        print(f"{name:<48} {a:>9.3f}s {b:>9.2f}s {ratio:>7.3g}x  {target:<15} {note}")
        table.append(dict(task=name, mothlab_s=a, other_s=b, ratio=ratio, target=target, note=note))
    print(
        "z (null a, analytic):",
        ", ".join(f"{k} {v:+.1f}" for k, v in zip(za.motifs, za.z[0]) if np.isfinite(v)),
    )
    print(
        "z (null b, sampled): ",
        ", ".join(f"{k} {v:+.1f}" for k, v in zip(zb.motifs, zb.z[0]) if np.isfinite(v)),
    )
    ok = t_a <= 0.1 and t_b <= 5 and t_orig_z / t_b >= 20 and t_sweep <= 600
    if t_c is not None:
        ok = ok and t_c * 1000 / args.n_degrees <= 5
    if mixing is not None:
        ok = ok and mixing["mixed_at_max"] is not None and mixing["mixed_at_max"] <= 10
    ig_rows = [r for r in table if r["task"].startswith("igraph")]
    ig = "; ".join(
        f"igraph size {3 + i} {r['other_s']:.2f} s ({r['ratio']:.0f}× mothlab's counts)"
        for i, r in enumerate(ig_rows)
    )
    summary = (
        f"summary: motifs — counts {t_count * 1e3:.0f} ms ({t_count_orig / t_count:.0f}× "
        f"loops){'; ' + ig if ig else ''}; null(a) z {t_a * 1e3:.0f} ms, null(b) "
        f"{args.n_random}-sample z {t_b:.2f} s ({t_orig_z / t_b:.0f}× original style)"
        + (
            f", null(c) {t_c * 1000 / args.n_degrees:.1f} s per 1000 samples (sampling "
            f"{t_c_sample * 1000 / args.n_degrees:.1f} s, null(b)'s "
            f"{t_b_sample * 1000 / args.n_degrees:.1f} s)"
            if t_c
            else ""
        )
        + (
            f", null(c) mixed at {mixing['mixed_at_max']} swaps/edge (runs 10)"
            if mixing is not None
            else ""
        )
        + f", 350×18 sweep {t_sweep / 60:.1f} min — "
        f"{'targets met' if ok else 'some targets missed'}; load {load_average()}"
    )
    print(summary)
    write_record(
        "motifs",
        command=command_line(),
        table=table,
        summary=summary,
        figures=dict(
            counts_ms=t_count * 1e3,
            null_a_ms=t_a * 1e3,
            null_b_s=t_b,
            null_c_s_per_1000=(t_c * 1000 / args.n_degrees) if t_c else None,
            null_c_sampling_s_per_1000=(t_c_sample * 1000 / args.n_degrees) if t_c else None,
            null_b_sampling_s_per_1000=(t_b_sample * 1000 / args.n_degrees) if t_c else None,
            null_c_mixing=mixing,
            sweep_min=t_sweep / 60,
            igraph=ig_rows,
        ),
        started_load=load0,
        out=args.record,
    )
    return 0
