"""Sparse motif counting on the CPU, compiled with numba: the counter the null models run on.

:func:`mothlab.analysis.motifs.count_canonical` and its JAX twin count motifs with dense matrix
products (Gram matrices, path counts), whose cost grows with the layer widths cubed whatever the
sparsity. A 93 %-sparse paper-width network has ~10,000 edges, and every count here is a sum over
edges times a degree: walking adjacency lists does ~100× fewer operations than the dense products.

Measured on this machine (2-core AMD EPYC, 2 Dec 2026 03:01 UTC, load 4.6, same process, 1,000
degree-preserving null samples of `mothlab bench motifs`' network, a 93 %-sparse random
10-400-400-400-16-7 in live form): dense counting in JAX 2.2-2.5 s, these kernels 1.0 s.

Same contract and results as :func:`count_canonical` (canonical form in, int64 totals out), for
both chain conventions and both 3rd-order converging conventions; the tests check them against it
and against brute-force enumeration. Each network is one iteration of a parallel loop (numba
``prange``), so the totals do not depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = ["count_canonical_numba"]

# column order of the kernel's output (the order of mothlab.analysis.motifs.MOTIFS)
_EDGES, _DIV2, _CONV2, _CHAIN2, _DIV3, _CONV3, _CHAIN3, _BIFAN, _BIPAR = range(9)


@numba.njit(cache=True, nogil=True)
def _lists(a):
    """Out-lists and in-lists of a 0/1 matrix (r, c) in one pass over its cells:
    (out indptr (r+1,), column indices, in indptr (c+1,), row indices)."""
    r, c = a.shape
    p_out = np.zeros(r + 1, np.int64)
    i_out = np.empty(r * c, np.int64)
    p_in = np.zeros(c + 1, np.int64)
    k = 0
    for i in range(r):
        for j in range(c):
            if a[i, j]:
                i_out[k] = j
                k += 1
                p_in[j + 1] += 1
        p_out[i + 1] = k
    for j in range(c):
        p_in[j + 1] += p_in[j]
    fill = p_in[:-1].copy()
    i_in = np.empty(k, np.int64)
    for i in range(r):  # rows in increasing order: each in-list comes out sorted
        for t in range(p_out[i], p_out[i + 1]):
            j = i_out[t]
            i_in[fill[j]] = i
            fill[j] += 1
    return p_out, i_out[:k], p_in, i_in


@numba.njit(cache=True, nogil=True)
def _pairs_of_common(p_out, i_out, p_in, i_in, n_rows):
    """Σ over row pairs i < k of C(common targets of i and k, 2): the layer's bi-fans.

    For each row i, the rows k > i sharing a target are found through the targets' in-lists
    (sorted, so they are the tail after i); cost Σ_targets C(indeg, 2) (the caller passes the
    transposed lists when the other side is cheaper). Branch-free on purpose: raising a count
    from v to v + 1 adds v pairs, and a `k > i` test in the loop made it 1.7x slower (measured
    on the bench network, 2 Dec 2026).
    """
    g = np.zeros(n_rows, np.int64)
    pos = p_in[:-1].copy()  # pos[j]: where row i sits in target j's in-list when row i is reached
    total = 0
    for i in range(n_rows):
        for t in range(p_out[i], p_out[i + 1]):
            j = i_out[t]
            for s in range(pos[j] + 1, p_in[j + 1]):
                k = i_in[s]
                total += g[k]
                g[k] += 1
            pos[j] += 1
        for t in range(p_out[i], p_out[i + 1]):
            j = i_out[t]
            for s in range(pos[j], p_in[j + 1]):
                g[i_in[s]] = 0
    return total


@numba.njit(cache=True, nogil=True)
def _count_one(data, shapes, offsets, pairs, conv_published):
    """All motif totals (9,) of one network, its layers packed in ``data``."""
    L = shapes.shape[0]
    out = np.zeros(9, np.int64)  # local: threads writing neighbouring rows share cache lines
    lists = []
    for l in range(L):
        r, c = shapes[l, 0], shapes[l, 1]
        lists.append(_lists(data[offsets[l] : offsets[l] + r * c].reshape(r, c)))
    for l in range(L):
        r, c = shapes[l, 0], shapes[l, 1]
        p_out, i_out, p_in, i_in = lists[l]
        cost_rows = 0  # Σ indeg²: the cost of finding common targets through in-lists
        cost_cols = 0  # Σ outdeg²: through out-lists
        for i in range(r):
            d = p_out[i + 1] - p_out[i]
            out[_EDGES] += d
            out[_DIV2] += d * (d - 1) // 2
            out[_DIV3] += d * (d - 1) * (d - 2) // 6
            cost_cols += d * d
        for j in range(c):
            d = p_in[j + 1] - p_in[j]
            out[_CONV2] += d * (d - 1) // 2
            out[_CONV3] += d * (d - 1) // 2 if conv_published else d * (d - 1) * (d - 2) // 6
            cost_rows += d * d
        if cost_rows <= cost_cols:
            out[_BIFAN] += _pairs_of_common(p_out, i_out, p_in, i_in, r)
        else:
            out[_BIFAN] += _pairs_of_common(p_in, i_in, p_out, i_out, c)
        if l + 1 >= L:
            continue
        # layer pair (l, l+1): paths a -> b -> d, a any row of layer l, d a target of layer l+1
        q_out, j_out = lists[l + 1][0], lists[l + 1][1]
        n_d = shapes[l + 1, 1]
        if not pairs:
            for b in range(c):  # chain2 as paths: indeg(b) x outdeg(b)
                out[_CHAIN2] += (p_in[b + 1] - p_in[b]) * (q_out[b + 1] - q_out[b])
        has3 = l + 2 < L
        s_out, k_out = lists[min(l + 2, L - 1)][0], lists[min(l + 2, L - 1)][1]
        n_e = shapes[min(l + 2, L - 1), 1]
        if has3 and not pairs:  # chain3 as paths: Σ_d (Σ_b indeg(b) A'[b, d]) outdeg''(d)
            v = np.zeros(n_d, np.int64)
            for b in range(c):
                w = p_in[b + 1] - p_in[b]
                for t in range(q_out[b], q_out[b + 1]):
                    v[j_out[t]] += w
            for d in range(n_d):
                out[_CHAIN3] += v[d] * (s_out[d + 1] - s_out[d])
        stamp = np.full(n_e, -1, np.int64)
        p = np.zeros(n_d, np.int64)
        hit = np.empty(n_d, np.int64)
        for a_ in range(r):
            if pairs:
                nh = 0
                for t in range(p_out[a_], p_out[a_ + 1]):
                    b = i_out[t]
                    for u in range(q_out[b], q_out[b + 1]):
                        d = j_out[u]
                        if p[d] == 0:
                            hit[nh] = d
                            nh += 1
                        out[_BIPAR] += p[d]  # C(v + 1, 2) − C(v, 2) = v
                        p[d] += 1
                for s in range(nh):
                    p[hit[s]] = 0
                out[_CHAIN2] += nh  # distinct (a, d) joined by a path
                if has3:  # distinct (a, e) joined by a 3-edge path
                    for s in range(nh):
                        d = hit[s]
                        for w in range(s_out[d], s_out[d + 1]):
                            e = k_out[w]
                            if stamp[e] != a_:
                                stamp[e] = a_
                                out[_CHAIN3] += 1
            else:
                for t in range(p_out[a_], p_out[a_ + 1]):
                    b = i_out[t]
                    for u in range(q_out[b], q_out[b + 1]):
                        d = j_out[u]
                        out[_BIPAR] += p[d]
                        p[d] += 1
                for t in range(p_out[a_], p_out[a_ + 1]):
                    b = i_out[t]
                    for u in range(q_out[b], q_out[b + 1]):
                        p[j_out[u]] = 0
    return out


@numba.njit(cache=True, nogil=True)
def _count_range(data, shapes, offsets, pairs, conv_published, out, start, stop):
    for g in range(start, stop):
        out[g] = _count_one(data[g], shapes, offsets, pairs, conv_published)


def count_canonical_numba(aug, chains: str = "paths", converging3: str = "exact") -> np.ndarray:
    """Motif counts of networks in canonical form, by walking adjacency lists.

    Parameters
    ----------
    aug : list of 0/1 arrays (B, r_l, c_l), the canonical form of
        :mod:`mothlab.analysis.motifs` (the first c_{l-1} rows of layer l are its nodes)
    chains, converging3 : as :func:`mothlab.analysis.motifs.count_canonical`

    Returns
    -------
    int64 array (B, 9), columns in :data:`mothlab.analysis.motifs.MOTIFS` order.
    """
    B = np.asarray(aug[0]).shape[0]
    # one packed (B, Σ r_l c_l) array keeps a single compiled signature for every depth
    data = np.concatenate([(np.asarray(a) != 0).reshape(B, -1) for a in aug], axis=1)
    shapes = np.array([np.shape(a)[1:] for a in aug], np.int64)
    offsets = np.concatenate([[0], np.cumsum(shapes[:, 0] * shapes[:, 1])[:-1]]).astype(np.int64)
    out = np.zeros((B, 9), np.int64)
    # threads over blocks of networks (the kernel releases the GIL); numba's own parallel loop
    # took 29 s to compile against 9.5 s for this serial kernel (load 5.7, 2 Dec 2026)
    n = max(1, min(os.cpu_count() or 1, B))
    edges = np.linspace(0, B, n + 1).astype(int)
    args = (data, shapes, offsets, chains == "pairs", converging3 == "published", out)
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(lambda k: _count_range(*args, edges[k], edges[k + 1]), range(n)))
    return out
