"""Exact motif counts of layered (feed-forward) networks, vectorised over a network axis.

A network is a list of binary masks ``A_l`` of shape ``(n_l, n_{l+1})`` (rows = source nodes in layer
``l``, columns = target nodes in layer ``l+1``), optionally with a leading network axis
``(n_networks, n_l, n_{l+1})``. An optional bias vector ``b_l`` of shape ``(n_{l+1},)`` (or
``(n_networks, n_{l+1})``) is the bias of layer ``l+1``; it is counted as one extra *source* node in
layer ``l`` (it has out-edges but no in-edges), as in the papers (SCIENCE.md §4).

Motifs (n-th order = n+1 nodes):

===========  ======================================================  =========================
key          motif                                                   closed form (per layer)
===========  ======================================================  =========================
edges        a→b                                                     Σ A
diverging2   a→b, a→c                                                Σ_rows C(outdeg, 2)
converging2  a→c, b→c                                                Σ_cols C(indeg, 2)
chain2       a→b→c over three layers                                 Σ A_l A_{l+1}
diverging3   a→b, a→c, a→d                                           Σ_rows C(outdeg, 3)
converging3  a→d, b→d, c→d                                           Σ_cols C(indeg, 3)
chain3       a→b→c→d over four layers                                Σ A_l A_{l+1} A_{l+2}
bifan        a, b → c, d (all four edges, two adjacent layers)       Σ_{row pairs} C(common, 2)
biparallel   a→b→d and a→c→d (the diamond)                           Σ C((A_l A_{l+1})_{ad}, 2)
===========  ======================================================  =========================

Published quirks are available on purpose, never by default: ``chains="pairs"`` counts chains as
distinct (source, target) pairs joined by at least one path (SCIENCE.md §5 item 8) and
``converging3="published"`` counts 3rd-order converging motifs with C(n, 2) (item 7).

Exactness: every matrix product is taken on 0/1 matrices in floating point, where each entry is an
integer no larger than the inner dimension (< 2**24 for float32, checked), so the products are exact;
they are then rounded to int64 before any binomial or sum. Totals are int64 (the dense paper network
has ~1.4e10 bi-parallels, far below 2**63). A single network gives Python ``int`` values.

Internally a network is in *canonical form*: a list of 0/1 arrays ``(B, r_l, c_l)`` where the first
``c_{l-1}`` rows of layer ``l`` are the nodes of layer ``l`` (targets of the previous layer) and any
further rows are bias nodes (sources only). The null models of :mod:`mothlab.analysis.nulls` produce
this form directly.
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np

# JAX is imported inside the JAX counters only: `import jax` costs ~1.2 s (measured on this
# machine, `python -c "import jax"` with load 2), and sparsity tables never need it.

__all__ = [
    "MOTIFS",
    "MOTIF_LABELS",
    "CHAINS",
    "CONVERGING3",
    "count_motifs",
    "prune_ghost_dead",
    "normalise_masks",
    "prune_batched",
    "canonical",
    "live_canonical",
    "count_canonical",
    "count_canonical_jax",
    "count_batch",
    "dense_closed_forms",
]

MOTIFS = (
    "edges",
    "diverging2",
    "converging2",
    "chain2",
    "diverging3",
    "converging3",
    "chain3",
    "bifan",
    "biparallel",
)
"""The motif keys, in the papers' order (1st, 2nd, 3rd order)."""

MOTIF_LABELS = {
    "edges": "edge",
    "diverging2": "2nd diverging",
    "converging2": "2nd converging",
    "chain2": "2nd chain",
    "diverging3": "3rd diverging",
    "converging3": "3rd converging",
    "chain3": "3rd chain",
    "bifan": "bi-fan",
    "biparallel": "bi-parallel",
}

CHAINS = ("paths", "pairs")
CONVERGING3 = ("exact", "published")

_F32_EXACT = 2**24
_F64_EXACT = 2**53


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------


def _as_binary(a, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(
            f"{what} must be a 0/1 (or bool) array, got dtype {arr.dtype}; "
            "pass masks such as `weights != 0`."
        )
    ok = (arr == 0) | (arr == 1)
    if not np.all(ok):
        raise ValueError(
            f"{what} must contain only 0 and 1 (binary mask), found values such as "
            f"{arr[~ok].ravel()[:3].tolist()}; pass `mask != 0` instead of weights."
        )
    return arr.astype(bool)


def normalise_masks(masks, biases=None):
    """Validate ``masks``/``biases`` → (list of bool (B, n_l, n_{l+1}), list of bool (B, n_{l+1}) or
    None, batched flag): the batched form every counter and null works on. Raises ValueError
    saying what is wrong with the input and how to fix it."""
    if isinstance(masks, np.ndarray) or not isinstance(masks, (list, tuple)):
        raise ValueError(
            "masks must be a list (one entry per weight layer) of 0/1 arrays of shape "
            "(n_in, n_out) or (n_networks, n_in, n_out)"
        )
    if len(masks) == 0:
        raise ValueError("masks is empty: give at least one weight layer")
    ms = [_as_binary(m, f"masks[{i}]") for i, m in enumerate(masks)]
    nd = {m.ndim for m in ms}
    if len(nd) != 1 or nd.pop() not in (2, 3):
        raise ValueError(
            "every mask must have shape (n_in, n_out) or (n_networks, n_in, n_out), all "
            f"with the same number of dimensions; got shapes {[m.shape for m in ms]}"
        )
    batched = ms[0].ndim == 3
    if not batched:
        ms = [m[None] for m in ms]
    b = ms[0].shape[0]
    for i, m in enumerate(ms):
        if m.shape[0] != b:
            raise ValueError(
                f"masks[{i}] has {m.shape[0]} networks but masks[0] has {b}; every layer "
                "needs the same leading network axis"
            )
        if i and m.shape[1] != ms[i - 1].shape[2]:
            raise ValueError(
                f"masks[{i}] has {m.shape[1]} rows but masks[{i - 1}] has "
                f"{ms[i - 1].shape[2]} columns; consecutive layers must chain "
                "(n_out of one = n_in of the next)"
            )
    bs = None
    if biases is not None:
        if len(biases) != len(ms):
            raise ValueError(
                f"biases has {len(biases)} entries but masks has {len(ms)}; give one "
                "bias mask per weight layer (bias of the layer it feeds) or None"
            )
        bs = []
        for i, (bv, m) in enumerate(zip(biases, ms)):
            bv = _as_binary(bv, f"biases[{i}]")
            if not batched:
                bv = bv[None]
            if bv.shape != (b, m.shape[2]):
                want = (b, m.shape[2]) if batched else (m.shape[2],)
                raise ValueError(
                    f"biases[{i}] has shape {bv.shape if batched else bv.shape[1:]}, "
                    f"expected {want} (one entry per target node of masks[{i}])"
                )
            bs.append(bv)
    return ms, bs, batched


# --------------------------------------------------------------------------------------------------
# ghost and dead nodes
# --------------------------------------------------------------------------------------------------


def prune_batched(ms, bs):
    """Ghost/dead removal to a fixed point on the batched form of :func:`normalise_masks`
    (bool (B, n_l, n_{l+1}) lists, biases (B, n_{l+1}) or None); returns new (masks, biases)."""
    ms = [m.copy() for m in ms]
    bs = None if bs is None else [b.copy() for b in bs]
    while True:
        changed = False
        for l in range(1, len(ms)):  # hidden layer l = columns of ms[l-1] = rows of ms[l]
            has_in = ms[l - 1].any(axis=1)
            if bs is not None:
                has_in = has_in | bs[l - 1]
            has_out = ms[l].any(axis=2)
            gone = ~(has_in & has_out)
            # remove a node only if it still has an edge to remove (keeps the fixed point check exact)
            touch = gone & (
                ms[l - 1].any(axis=1) | has_out | (bs[l - 1] if bs is not None else False)
            )
            if touch.any():
                changed = True
                ms[l - 1] &= ~gone[:, None, :]
                ms[l] &= ~gone[:, :, None]
                if bs is not None:
                    bs[l - 1] &= ~gone
        if not changed:
            return ms, bs


def prune_ghost_dead(masks, biases=None):
    """Remove ghost and dead hidden nodes, iterated to a fixed point.

    A ghost node is a hidden node with no input (no incoming edge, and no bias when ``biases`` is
    given: a node fed only by its bias still carries a signal); a dead node is a hidden node with no
    output. Removing one can create others (a node fed only by a ghost becomes a ghost), so the
    removal repeats until nothing changes. Input and output nodes are never removed (an isolated one
    takes part in no motif anyway).

    Parameters
    ----------
    masks : list of 0/1 arrays, (n_l, n_{l+1}) or (n_networks, n_l, n_{l+1})
    biases : optional list of 0/1 arrays, (n_{l+1},) or (n_networks, n_{l+1})

    Returns
    -------
    (masks, biases) : same shapes, bool; ``biases`` is None when none were given.

    >>> import numpy as np
    >>> m = [np.array([[1, 0]]), np.array([[1], [0]]), np.array([[1]])]
    >>> [x.astype(int).tolist() for x in prune_ghost_dead(m)[0]]
    [[[1, 0]], [[1], [0]], [[1]]]
    >>> m = [np.array([[0, 1]]), np.array([[1], [0]]), np.array([[1]])]  # chain broken twice
    >>> [int(x.sum()) for x in prune_ghost_dead(m)[0]]
    [0, 0, 0]
    """
    ms, bs, batched = normalise_masks(masks, biases)
    ms, bs = prune_batched(ms, bs)
    if not batched:
        ms = [m[0] for m in ms]
        bs = None if bs is None else [b[0] for b in bs]
    return ms, bs


# --------------------------------------------------------------------------------------------------
# canonical form
# --------------------------------------------------------------------------------------------------


def canonical(ms, bs=None):
    """Bool layer list (B, n_l, n_{l+1}) (+ biases (B, n_{l+1})) → canonical form (bias rows appended).

    Returns a list of bool arrays ``(B, r_l, c_l)`` with ``r_l = n_l (+1 with biases)``.
    """
    if bs is None:
        return list(ms)
    return [np.concatenate([m, b[:, None, :]], axis=1) for m, b in zip(ms, bs)]


def live_canonical(ms, bs=None):
    """Compress one network (B == 1) to its live nodes, in canonical form.

    Keeps, per layer, the nodes that take part in at least one edge (after ghost/dead removal every
    kept hidden node has an input and an output). Bias rows with no edge are dropped. Motif counts
    are unchanged (isolated nodes take part in no motif). Returns a list of bool (1, r_l, c_l).
    """
    aug = canonical(ms, bs)
    keep_cols = [a[0].any(axis=0) for a in aug]
    out = []
    for l, a in enumerate(aug):
        a = a[0]
        n_nodes = ms[l].shape[1]
        has_out = a.any(axis=1)
        if l == 0:
            node_rows = np.flatnonzero(has_out[:n_nodes])
        else:
            # rows must stay aligned with the previous layer's kept columns; a node with outputs
            # but no input (possible only without pruning) becomes a source-only row
            node_rows = np.concatenate(
                [
                    np.flatnonzero(keep_cols[l - 1]),
                    np.flatnonzero(~keep_cols[l - 1] & has_out[:n_nodes]),
                ]
            )
        rows = np.concatenate([node_rows, n_nodes + np.flatnonzero(has_out[n_nodes:])])
        out.append(a[np.ix_(rows, np.flatnonzero(keep_cols[l]))][None])
    return out


# --------------------------------------------------------------------------------------------------
# counting on the canonical form
# --------------------------------------------------------------------------------------------------


def _comb2(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    return x * (x - 1) // 2


def _comb3(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    return x * (x - 1) * (x - 2) // 6


def _exact_matmul(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Exact integer product of nonnegative integer matrices (B, i, k) @ (B, k, j) → int64.

    ``bound`` is an upper bound on every entry of the result; float32 BLAS is used when it is below
    2**24 (exact), float64 below 2**53, integer matmul otherwise.
    """
    if bound < _F32_EXACT:
        return np.rint(np.matmul(a.astype(np.float32), b.astype(np.float32))).astype(np.int64)
    if bound < _F64_EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def _gram_plan(shapes):
    """Choose, per layer, which Gram matrix serves the bi-fan count (rows: r×r, cols: c×c) and, per
    layer pair, whether the bi-parallel count uses the direct product or Grams, minimising the
    multiply-add count (brute force over the few layers)."""
    L = len(shapes)
    best = None
    for fan in itertools.product((0, 1), repeat=L):  # 0: row Gram, 1: column Gram
        for par in itertools.product((0, 1), repeat=max(L - 1, 0)):  # 0: direct, 1: Grams
            need = set()
            cost = 0
            for l in range(L):
                need.add(("col", l) if fan[l] else ("row", l))
            for l in range(L - 1):
                if par[l]:
                    need.add(("col", l))
                    need.add(("row", l + 1))
                else:
                    r, c = shapes[l]
                    cost += r * c * shapes[l + 1][1]
            for kind, l in need:
                r, c = shapes[l]
                cost += r * c * c if kind == "col" else r * r * c
            if best is None or cost < best[0]:
                best = (cost, fan, par)
    return best[1], best[2]


def count_canonical(aug, chains="paths", converging3="exact") -> dict[str, np.ndarray]:
    """Motif counts of networks in canonical form (see module docstring).

    Parameters
    ----------
    aug : list of 0/1 arrays (B, r_l, c_l); the first c_{l-1} rows of layer l are its nodes.

    Returns
    -------
    dict motif → int64 array (B,)
    """
    L = len(aug)
    B = aug[0].shape[0]
    shapes = [a.shape[1:] for a in aug]
    f = [np.asarray(a, dtype=np.float32) for a in aug]
    rows = [a.sum(axis=2, dtype=np.int64) for a in f]  # out-degree of every source row
    cols = [a.sum(axis=1, dtype=np.int64) for a in f]  # in-degree of every target
    z = np.zeros(B, dtype=np.int64)
    out = {k: z.copy() for k in MOTIFS}
    c3 = _comb2 if converging3 == "published" else _comb3
    for l in range(L):
        out["edges"] += rows[l].sum(axis=1)
        out["diverging2"] += _comb2(rows[l]).sum(axis=1)
        out["diverging3"] += _comb3(rows[l]).sum(axis=1)
        out["converging2"] += _comb2(cols[l]).sum(axis=1)
        out["converging3"] += c3(cols[l]).sum(axis=1)

    def real(l):  # the node rows of layer l (targets of layer l-1)
        return f[l][:, : shapes[l - 1][1], :]

    prods: dict = {}

    def prod(l):  # paths counts between layer l's sources and layer l+2's nodes, int64
        if l not in prods:
            prods[l] = _exact_matmul(f[l], real(l + 1), shapes[l][1])
        return prods[l]

    # chains
    for l in range(L - 1):
        nxt = rows[l + 1][:, : shapes[l][1]]
        if chains == "paths":
            out["chain2"] += (cols[l] * nxt).sum(axis=1)
        else:
            out["chain2"] += (prod(l) > 0).sum(axis=(1, 2))
    for l in range(L - 2):
        if chains == "paths":
            v = np.einsum("bi,bij->bj", cols[l], real(l + 1).astype(np.int64))
            out["chain3"] += (v * rows[l + 2][:, : shapes[l + 1][1]]).sum(axis=1)
        else:
            # only reachability matters for pairs: 0/1 reach matrix, then one more product
            p = (prod(l) > 0).astype(np.float32)
            q = _exact_matmul(p, real(l + 2), shapes[l + 1][1])
            out["chain3"] += (q > 0).sum(axis=(1, 2))

    # bi-fans and bi-parallels from Gram matrices (shared where that saves work)
    fan, par = _gram_plan(shapes)
    grams: dict = {}

    def gram(kind, l):
        key = (kind, l)
        if key not in grams:
            a = f[l]
            if kind == "col":
                grams[key] = _exact_matmul(np.swapaxes(a, 1, 2), a, shapes[l][0])
            else:
                grams[key] = _exact_matmul(a, np.swapaxes(a, 1, 2), shapes[l][1])
        return grams[key]

    def offdiag_pairs(g):  # Σ_{i<k} C(g_ik, 2)
        tot = _comb2(g).sum(axis=(1, 2))
        diag = _comb2(np.diagonal(g, axis1=1, axis2=2)).sum(axis=1)
        return (tot - diag) // 2

    for l in range(L):
        out["bifan"] += offdiag_pairs(gram("col" if fan[l] else "row", l))
    for l in range(L - 1):
        nb = shapes[l][1]
        if par[l]:
            g = gram("col", l)  # (nb, nb): common sources of b, b'
            h = gram("row", l + 1)[:, :nb, :nb]  # (nb, nb): common targets of b, b'
            sq = (g * h).sum(axis=(1, 2))  # Σ_ad P_ad²
            lin = (cols[l] * rows[l + 1][:, :nb]).sum(axis=1)  # Σ_ad P_ad
            out["biparallel"] += (sq - lin) // 2
        else:
            out["biparallel"] += _comb2(prod(l)).sum(axis=(1, 2))
    return out


def count_motifs(
    masks,
    biases=None,
    chains: str = "paths",
    converging3: str = "exact",
    remove_ghost_dead: bool = True,
) -> dict:
    """Exact motif counts of one network or a batch of networks.

    Parameters
    ----------
    masks : list of 0/1 arrays, one per weight layer, (n_l, n_{l+1}) or (n_networks, n_l, n_{l+1})
    biases : optional list of 0/1 arrays (n_{l+1},) or (n_networks, n_{l+1}): bias of the layer each
        mask feeds, counted as one extra source node (the papers' convention).
    chains : "paths" (default: every path a→b→c is one motif) or "pairs" (published: distinct
        (source, target) pairs joined by a path).
    converging3 : "exact" (C(indeg, 3)) or "published" (C(indeg, 2), the original code's slip).
    remove_ghost_dead : remove ghost/dead hidden nodes first (:func:`prune_ghost_dead`).

    Returns
    -------
    dict motif → Python int (unbatched input) or int64 array (n_networks,), keys :data:`MOTIFS`.

    >>> import numpy as np
    >>> dense = [np.ones((2, 3)), np.ones((3, 2))]
    >>> c = count_motifs(dense)
    >>> c["edges"], c["chain2"], c["bifan"], c["biparallel"]
    (12, 12, 6, 12)
    """
    if chains not in CHAINS:
        raise ValueError(f"chains must be one of {CHAINS}, got {chains!r}")
    if converging3 not in CONVERGING3:
        raise ValueError(f"converging3 must be one of {CONVERGING3}, got {converging3!r}")
    ms, bs, batched = normalise_masks(masks, biases)
    if remove_ghost_dead:
        ms, bs = prune_batched(ms, bs)
    aug = canonical(ms, bs)
    if ms[0].shape[0] >= 4:  # many networks: chunked JAX (one compilation serves every chunk)
        arr = count_batch(aug, chains, converging3)
        res = {k: arr[:, j] for j, k in enumerate(MOTIFS)}
    else:
        res = count_canonical(aug, chains=chains, converging3=converging3)
    if not batched:
        return {k: int(v[0]) for k, v in res.items()}
    return res


def dense_closed_forms(layer_sizes, biases: bool = True) -> dict[str, int]:
    """Closed-form counts of the fully connected network with ``layer_sizes`` (Python ints).

    With ``biases`` every non-input layer has a bias node counted as a source of the layer below.
    Used as a check of :func:`count_motifs` (paper net 10-400-400-400-16-7 with biases: 331,735
    edges, 64,925,877 2nd-order diverging motifs, 12,813,935,856 bi-fans).
    """
    n = list(layer_sizes)
    r = [n[l] + (1 if biases else 0) for l in range(len(n) - 1)]
    c = n[1:]
    L = len(c)
    out = dict.fromkeys(MOTIFS, 0)
    for l in range(L):
        out["edges"] += r[l] * c[l]
        out["diverging2"] += r[l] * comb(c[l], 2)
        out["diverging3"] += r[l] * comb(c[l], 3)
        out["converging2"] += c[l] * comb(r[l], 2)
        out["converging3"] += c[l] * comb(r[l], 3)
        out["bifan"] += comb(r[l], 2) * comb(c[l], 2)
    for l in range(L - 1):
        out["chain2"] += r[l] * c[l] * c[l + 1]
        out["biparallel"] += r[l] * comb(c[l], 2) * c[l + 1]
    for l in range(L - 2):
        out["chain3"] += r[l] * c[l] * c[l + 1] * c[l + 2]
    return out


# --------------------------------------------------------------------------------------------------
# batched counting in JAX (for the many random networks of a null model)
# --------------------------------------------------------------------------------------------------

_JAX_MAX_DIM = 1200  # every int32 partial sum below stays < 2**31 for dimensions up to this


def _jax_partials(aug, chains, converging3, fan, par):
    """Per-node partial sums (int32) of every motif, from float32 0/1 arrays (B, r_l, c_l)."""
    import jax.numpy as jnp

    L = len(aug)
    shapes = [a.shape[1:] for a in aug]
    parts = {k: [] for k in MOTIFS}

    def c2(x):
        return x * (x - 1) // 2

    def c3(x):
        return x * (x - 1) * (x - 2) // 6

    rows = [a.sum(axis=2).astype(jnp.int32) for a in aug]
    cols = [a.sum(axis=1).astype(jnp.int32) for a in aug]
    for l in range(L):
        parts["edges"].append(rows[l])
        parts["diverging2"].append(c2(rows[l]))
        parts["diverging3"].append(c3(rows[l]))
        parts["converging2"].append(c2(cols[l]))
        parts["converging3"].append(c2(cols[l]) if converging3 == "published" else c3(cols[l]))

    def real(l):
        return aug[l][:, : shapes[l - 1][1], :]

    def mm(a, b):
        return jnp.rint(jnp.matmul(a, b, precision="highest")).astype(jnp.int32)

    for l in range(L - 1):
        if chains == "paths":
            parts["chain2"].append(cols[l] * rows[l + 1][:, : shapes[l][1]])
        else:
            parts["chain2"].append((mm(aug[l], real(l + 1)) > 0).sum(axis=2, dtype=jnp.int32))
    for l in range(L - 2):
        if chains == "paths":
            v = jnp.rint(
                jnp.einsum(
                    "bi,bij->bj", cols[l].astype(jnp.float32), real(l + 1), precision="highest"
                )
            ).astype(jnp.int32)
            parts["chain3"].append(v * rows[l + 2][:, : shapes[l + 1][1]])
        else:
            p = (jnp.matmul(aug[l], real(l + 1), precision="highest") > 0.5).astype(jnp.float32)
            q = jnp.matmul(p, real(l + 2), precision="highest")
            parts["chain3"].append((q > 0.5).sum(axis=2, dtype=jnp.int32))
    grams = {}

    def gram(kind, l):
        if (kind, l) not in grams:
            a = aug[l]
            at = jnp.swapaxes(a, 1, 2)
            grams[(kind, l)] = mm(at, a) if kind == "col" else mm(a, at)
        return grams[(kind, l)]

    for l in range(L):
        g = gram("col" if fan[l] else "row", l)
        diag = jnp.diagonal(g, axis1=1, axis2=2)
        # row sums of C(g, 2) off the diagonal; each unordered pair is counted twice
        parts["bifan"].append(c2(g).sum(axis=2) - c2(diag))
    for l in range(L - 1):
        nb = shapes[l][1]
        if par[l]:
            g = gram("col", l)
            h = gram("row", l + 1)[:, :nb, :nb]
            sq = (g * h).sum(axis=2)
            lin = cols[l] * rows[l + 1][:, :nb]
            parts["biparallel"].append(sq - lin)  # halved after the int64 sum
        else:
            parts["biparallel"].append(c2(mm(aug[l], real(l + 1))).sum(axis=2))
    return parts


_jax_fns: dict = {}


def count_canonical_jax(aug, chains: str = "paths", converging3: str = "exact", lazy=False):
    """Like :func:`count_canonical` but the matrix work runs in JAX (CPU or GPU), jitted per shape.

    Exact: products of 0/1 float32 matrices are integers < 2**24; per-node partial sums are int32
    (dimensions are checked against a bound that keeps them < 2**31) and the totals are summed in
    int64 by numpy. Falls back to :func:`count_canonical` for larger layers. With ``lazy`` it
    returns a function that waits for the (asynchronously dispatched) work and gives the dict, so
    the caller can prepare the next batch meanwhile.
    """
    import jax
    import jax.numpy as jnp

    shapes = tuple(tuple(a.shape[1:]) for a in aug)
    if max(max(s) for s in shapes) > _JAX_MAX_DIM or max(max(s) for s in shapes) <= 48:
        # huge layers: exact int64 path; small ones: numpy is faster than compiling per shape
        res = count_canonical(aug, chains, converging3)
        return (lambda: res) if lazy else res
    fan, par = _gram_plan(list(shapes))
    key = (shapes, chains, converging3)
    if key not in _jax_fns:
        # masks travel as bool (4x less to move) and become float32 inside the compiled function
        _jax_fns[key] = jax.jit(
            lambda xs: _jax_partials(
                [x.astype(jnp.float32) for x in xs], chains, converging3, fan, par
            )
        )
    parts = _jax_fns[key]([jnp.asarray(np.asarray(a) != 0) for a in aug])
    B = aug[0].shape[0]
    if lazy:
        return lambda: _finish(parts, B, par)
    return _finish(parts, B, par)


def _finish(parts, B, par):
    out = {}
    for k in MOTIFS:
        tot = np.zeros(B, np.int64)
        for p in parts[k]:
            tot += np.asarray(p).astype(np.int64).sum(axis=1)
        out[k] = tot
    out["bifan"] //= 2
    # bi-parallel partials from Grams are Σ P² − Σ P; from direct products already C(P, 2)
    if any(par):
        tot = np.zeros(B, np.int64)
        for l, p in enumerate(parts["biparallel"]):
            s = np.asarray(p).astype(np.int64).sum(axis=1)
            tot += s // 2 if par[l] else s
        out["biparallel"] = tot
    return out


def count_batch(aug, chains="paths", converging3="exact", chunk: int = 32) -> np.ndarray:
    """Counts of many networks in canonical form (same shapes). Returns int64 (B, n_motifs).

    With numba (a dependency of mothlab) the counts walk adjacency lists
    (:func:`mothlab.analysis.count_kernels.count_canonical_numba`, 2.3-3.4x faster than the
    dense JAX products on the 93 %-sparse paper network, measured 2 Dec 2026 at load 4.6-5.7); without it they run in
    JAX in fixed-size chunks of ``chunk`` (the last one padded with empty networks so one compiled
    function serves all). On an accelerator the JAX path is :func:`count_canonical_jax`.
    """
    try:
        from mothlab.analysis.count_kernels import count_canonical_numba
    except ImportError:  # numba missing (a platform without its wheels): dense JAX products
        pass
    else:
        return count_canonical_numba(aug, chains, converging3)
    B = aug[0].shape[0]
    out = np.zeros((B, len(MOTIFS)), np.int64)
    for s in range(0, B, chunk):
        part = [a[s : s + chunk] for a in aug]
        n = part[0].shape[0]
        if n < chunk and B > chunk:
            part = [np.concatenate([p, np.zeros((chunk - n, *p.shape[1:]), p.dtype)]) for p in part]
        c = count_canonical_jax(part, chains=chains, converging3=converging3)
        out[s : s + n] = np.stack([c[k][:n] for k in MOTIFS], axis=1)
    return out
