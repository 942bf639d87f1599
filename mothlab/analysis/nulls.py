"""Null models: random layered networks that keep chosen features of a real network.

Every sampler is seeded (same seed → same samples). All samplers work on a network in *canonical form* (see :mod:`mothlab.analysis.motifs`): a list of
0/1 layer matrices ``(r_l, c_l)``, bias rows appended, usually compressed to the live nodes of the
real network (:func:`mothlab.analysis.motifs.live_canonical`). Each layer is sampled independently,
and every sampler returns a batch: a list of bool arrays ``(n_samples, r_l, c_l)``.

``"edges_live_nodes"`` (null a; stores before mothlab 0.2 call it ``"edges"``)
    Each layer keeps its edge count ``E_l``, placed as a uniformly random ``E_l``-subset of the
    cells *among the network's live nodes* (its ``r_l × c_l`` compressed layer, after ghost/dead
    removal). Nodes may end up without an edge. Sampler: draw cells with replacement until
    ``E_l`` distinct cells have been seen (exactly uniform: it is sequential sampling without
    replacement), batched in rounds — in JAX on an accelerator, in numpy on CPU (XLA's CPU
    scatter is slower). The mean and variance of every motif count are known exactly
    (:func:`edges_moments`), so its z-scores need no sampling — except chains counted as distinct
    pairs (``chains="pairs"``), whose variance we do not derive: those are sampled.
``"edges_whole_layer"`` (the textbook layered Erdős–Rényi null)
    Each layer keeps its edge count ``E_l``, placed uniformly over *all* ``n_l × n_{l+1}`` cells of
    the layer (plus the bias row when biases count), whatever the real network's live nodes.
    Same sampler and the same exact moments as ``"edges_live_nodes"``, on the full layer shapes.
    Because the real edges crowd onto few live nodes while these spread over the whole layer,
    its z-scores of path motifs are much larger (SCIENCE.md §4; issue 10).
``"live_nodes"`` (null b, the papers' intent)
    Each layer keeps its edge count and its live nodes: uniform over the ``r_l × c_l`` 0/1
    matrices with ``E_l`` ones and no empty row or column. Sampler: exact rejection. The proposal
    is uniform over matrices with no empty column (column sizes drawn from their exact law
    ∝ Π C(r, k_j) by a log-space dynamic programme, then a uniform subset per column), accepted when
    no row is empty; the side with the fewer edges per node is the one covered by construction (the
    matrix is transposed when that is the row side), and a layer where both sides are dense uses
    the plain uniform proposal. Both proposals are uniform on a superset, so the accepted samples
    are exactly uniform on the constrained set (checked by chi-square on enumerable layers).
``"degrees"`` (null c)
    Each node keeps its in- and out-degree within every layer pair: Markov chain of checkerboard
    swaps (a→x, b→y ⇒ a→y, b→x when both new cells are empty), run in parallel chains from the real
    layer (JAX on an accelerator, numpy on CPU). The proposal is symmetric, so the chain's stationary law is uniform over the
    matrices with the given margins (connected by swaps, Ryser 1957); samples are approximately
    uniform after ``swaps_per_edge × E_l`` attempts (checked by chi-square on tiny layers).
``"as_published"``
    A re-implementation of the authors' ad hoc generator (SCIENCE.md §5 item 9), reconstructed
    from its description: for every live target node, draw one random live source; then draw
    random cells until the layer holds its edge count. Sources may be left without an edge and it
    is not uniform over any constrained set; offered only for comparison.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

__all__ = [
    "NULLS",
    "NULL_LABELS",
    "NULL_ALIASES",
    "ANALYTIC_NULLS",
    "resolve_null",
    "sample_null",
    "uniform_layers",
    "live_node_layer",
    "live_node_layers",
    "as_published_layers",
    "degree_layers",
    "degree_mixing",
    "SwapChains",
    "swap_attempts",
    "edges_moments",
]

# JAX is imported inside the samplers that use it: `import jax` costs ~1.2 s (measured,
# `python -c "import jax"` under load 2) and the exact moments and numpy samplers do not need it.

NULLS = {
    "edges_live_nodes": "edges among live nodes: each layer's edge count, placed uniformly among "
    "the network's live nodes (exact moments)",
    "edges_whole_layer": "edges over the whole layer: each layer's edge count, placed uniformly "
    "over all its cells (layered Erdős–Rényi; exact moments)",
    "live_nodes": "edge counts and live nodes: each layer's edge count, every live node keeping "
    "at least one edge (the papers' null, sampled uniformly)",
    "degrees": "degrees: every node's in- and out-degree in each layer (edge swaps, sampled)",
    "as_published": "as published: the authors' ad hoc generator (not uniform; for comparison)",
}
"""Null models: name → what the null keeps (one line, for tables and menus)."""

NULL_LABELS = {
    "edges_live_nodes": "edges among live nodes",
    "edges_whole_layer": "edges over the whole layer",
    "live_nodes": "edge counts + live nodes",
    "degrees": "degrees",
    "as_published": "as published",
}
"""Short labels of the nulls for plots and legends."""

NULL_ALIASES = {"edges": "edges_live_nodes"}
"""Old null names still accepted (and read from old stores): ``"edges"`` was the name of
``"edges_live_nodes"`` before the whole-layer null existed."""

ANALYTIC_NULLS = ("edges_live_nodes", "edges_whole_layer")
"""Nulls whose motif moments are exact (no sampling, except chains counted as pairs)."""


def resolve_null(null: str) -> str:
    """The current name of ``null`` (old names of :data:`NULL_ALIASES` mapped); ValueError when
    unknown, listing the names."""
    name = NULL_ALIASES.get(null, null)
    if name not in NULLS:
        raise ValueError(
            f"null must be one of {list(NULLS)} (old name 'edges' = "
            f"'edges_live_nodes'), got {null!r}"
        )
    return name


# --------------------------------------------------------------------------------------------------
# uniform E-subsets (null a) in JAX
# --------------------------------------------------------------------------------------------------


def _bucket(x: int) -> int:
    """Round up to 1, 2, 3, 4, 6, 8, 12, 16, ... (≤ 1.5× waste) so shapes repeat and jit caches."""
    if x <= 4:
        return max(int(x), 1)
    p = 1 << (int(x) - 1).bit_length()
    return p * 3 // 4 if p * 3 // 4 >= x else p


def _uniform_flat(key, n, k, n_samples: int, n_cap: int, r1: int, r2: int):
    """Bool (n_samples, n_cap + 1): the first n columns hold a uniform k-subset of range(n).

    ``n``, ``k`` are traced (one compilation serves many layer sizes); sizes are static.
    Cells are drawn with replacement until k distinct have been seen, in rounds of at most the
    remaining deficit (``r1`` draws, then ``r2``), so the rounds reproduce one-at-a-time sequential
    sampling without replacement exactly.
    """
    import jax
    import jax.numpy as jnp

    rows = jnp.arange(n_samples)[:, None]

    def draw(carry, size):
        bitmap, seen, key = carry
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (n_samples, size), 0, n)
        ok = jnp.arange(size)[None, :] < (k - seen)[:, None]
        idx = jnp.where(ok, idx, n_cap)  # dummy column
        bitmap = bitmap.at[rows, idx].set(True)
        seen = bitmap[:, :n_cap].sum(axis=1)
        return bitmap, seen, key

    bitmap = jnp.zeros((n_samples, n_cap + 1), bool)
    seen = jnp.zeros(n_samples, jnp.int32)
    carry = draw((bitmap, seen, key), r1)
    carry = jax.lax.while_loop(lambda cr: jnp.any(cr[1] < k), lambda cr: draw(cr, r2), carry)
    return carry[0]


_uniform_jit = None


def _uniform_numpy(rng: np.random.Generator, n_samples: int, n: int, k: int) -> np.ndarray:
    """Bool (n_samples, n): uniform k-subsets of range(n), the same round scheme as the JAX one."""
    bm = np.zeros((n_samples, n + 1), bool)
    deficit = np.full(n_samples, k)
    while True:
        act = np.flatnonzero(deficit > 0)
        if act.size == 0:
            return bm[:, :n]
        size = int(deficit[act].max())
        idx = rng.integers(0, n, (act.size, size))
        idx[np.arange(size)[None, :] >= deficit[act][:, None]] = n  # beyond the deficit: dummy
        bm[act[:, None], idx] = True
        deficit[act] = k - bm[act, :n].sum(axis=1)


def _backend(backend: str) -> str:
    if backend not in ("auto", "jax", "numpy"):
        raise ValueError(f"backend must be 'auto', 'jax' or 'numpy', got {backend!r}")
    if backend == "auto":
        import jax

        # XLA's CPU scatter is slower than numpy's fancy assignment; accelerators win with JAX
        return "numpy" if jax.default_backend() == "cpu" else "jax"
    return backend


def _uniform_layer(
    rng: np.random.Generator, n_samples: int, r: int, c: int, e: int, backend: str = "auto"
) -> np.ndarray:
    """Bool (n_samples, r, c), each a uniformly random e-subset of the r·c cells."""
    n = r * c
    if e <= 0 or e >= n:
        return np.full((n_samples, r, c), e >= n and e > 0)
    flip = e > n // 2  # choose the complement when it is smaller (fewer draws, fewer repeats)
    k = n - e if flip else e
    if _backend(backend) == "numpy":
        out = _uniform_numpy(rng, n_samples, n, k).reshape(n_samples, r, c)
    else:
        import jax

        global _uniform_jit
        if _uniform_jit is None:
            _uniform_jit = jax.jit(_uniform_flat, static_argnums=(3, 4, 5, 6))
        key = jax.random.PRNGKey(int(rng.integers(0, 2**31 - 1)))
        r1 = _bucket(k)
        r2 = _bucket(min(k, max(32, 4 * (k * k) // (2 * n) + 32)))
        bm = _uniform_jit(key, n, k, _bucket(n_samples), _bucket(n), r1, r2)
        out = np.asarray(bm)[:n_samples, :n].reshape(n_samples, r, c)
    return ~out if flip else out


def uniform_layers(shapes_edges, n_samples: int, seed: int = 0, backend: str = "auto"):
    """Null (a) sampler: list of bool (n_samples, r_l, c_l) with exactly E_l uniform edges per layer.

    ``shapes_edges`` is a sequence of (r_l, c_l, E_l); ``backend`` "jax", "numpy" or "auto" (JAX on
    an accelerator, numpy on CPU — the same algorithm).
    """
    rng = np.random.default_rng(seed)
    return [_uniform_layer(rng, n_samples, r, c, e, backend) for r, c, e in shapes_edges]


# --------------------------------------------------------------------------------------------------
# null (b): edge counts and live nodes (exact rejection)
# --------------------------------------------------------------------------------------------------


def _log_comb(n, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _p_empty(r, c, e):
    """P(a given row is empty) for a uniform e-subset of an r×c matrix (row has c cells)."""
    n = r * c
    if e > n - c:
        return 0.0
    return math.exp(_log_comb(n - c, e) - _log_comb(n, e))


@lru_cache(maxsize=256)
def _cover_table(r: int, c: int, e: int) -> np.ndarray:
    """log W[j, s]: log number of ways columns j..c-1 (each a nonempty subset of r rows) hold s
    ones in all. Shape (c+1, e+1)."""
    lc = np.array([_log_comb(r, k) if k >= 1 else -np.inf for k in range(r + 1)])
    w = np.full((c + 1, e + 1), -np.inf)
    w[c, 0] = 0.0
    for j in range(c - 1, -1, -1):
        prev = w[j + 1]
        cur = np.full(e + 1, -np.inf)
        for k in range(1, min(r, e) + 1):
            cand = lc[k] + prev[: e + 1 - k]
            cur[k:] = np.logaddexp(cur[k:], cand)
        w[j] = cur
    return w


def _column_cover(rng: np.random.Generator, n: int, r: int, c: int, e: int) -> np.ndarray:
    """n uniform samples of r×c 0/1 matrices with e ones and no empty column (bool (n, r, c))."""
    w = _cover_table(r, c, e)
    if not np.isfinite(w[0, e]):
        raise ValueError(f"no {r}x{c} matrix with {e} edges has every column nonempty")
    lc = np.array([_log_comb(r, k) for k in range(r + 1)])
    ks = np.arange(r + 1)
    rem = np.full(n, e)
    sizes = np.zeros((n, c), dtype=np.int64)
    for j in range(c):
        idx = rem[:, None] - ks[None, :]
        valid = (ks[None, :] >= 1) & (idx >= 0)
        logp = np.where(valid, lc[None, :] + w[j + 1][np.clip(idx, 0, e)], -np.inf)
        g = rng.gumbel(size=logp.shape)
        k = np.argmax(logp + g, axis=1)
        sizes[:, j] = k
        rem -= k
    keys = rng.random((n, r, c))
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    return rank < sizes[:, None, :]


def live_node_layer(
    rng: np.random.Generator,
    n: int,
    r: int,
    c: int,
    e: int,
    max_tries: int = 200,
    backend: str = "auto",
):
    """n exact uniform samples of r×c 0/1 matrices with e ones, no empty row and no empty column."""
    if e < max(r, c) or e > r * c:
        raise ValueError(
            f"a {r}x{c} layer cannot have {e} edges with every node live "
            f"(need max(r, c) <= edges <= r*c)"
        )
    exp_empty_rows = r * _p_empty(r, c, e)
    exp_empty_cols = c * _p_empty(c, r, e)
    out = []
    got = 0
    tries = 0
    while got < n:
        tries += 1
        if tries > max_tries:
            raise ValueError(
                f"null 'live_nodes': rejection sampling of a {r}x{c} layer with {e} "
                f"edges accepts too rarely; use null='degrees' or 'edges_live_nodes' for it"
            )
        plain = exp_empty_rows + exp_empty_cols < 0.5
        acc = math.exp(
            -(exp_empty_rows + exp_empty_cols) if plain else -min(exp_empty_rows, exp_empty_cols)
        )
        want = int((n - got) / max(acc, 0.01) * 1.05) + 8
        if plain:
            cand = _uniform_layer(rng, want, r, c, e, backend)
        elif exp_empty_cols >= exp_empty_rows:
            cand = _column_cover(rng, want, r, c, e)
        else:
            cand = np.swapaxes(_column_cover(rng, want, c, r, e), 1, 2)
        ok = cand.any(axis=2).all(axis=1) & cand.any(axis=1).all(axis=1)
        out.append(cand[ok])
        got += int(ok.sum())
    return np.concatenate(out)[:n]


def live_node_layers(shapes_edges, n_samples: int, seed: int = 0, backend: str = "auto"):
    """Null (b) sampler: list of bool (n_samples, r_l, c_l), each layer uniform over the matrices
    with E_l ones and no empty row or column."""
    rng = np.random.default_rng(seed)
    return [live_node_layer(rng, n_samples, r, c, e, backend=backend) for r, c, e in shapes_edges]


def as_published_layers(shapes_edges, n_samples: int, seed: int = 0):
    """The original ad hoc generator (for comparison only; SCIENCE.md §5 item 9), vectorised:
    every target gets one random source, then random cells are drawn until the layer holds E_l
    edges (a repeat is redrawn). Sources may end with no edge and the law is not uniform over any
    constrained set. Same distribution as ``mothlab.bench.motifs.original_generator``."""
    rng = np.random.default_rng(seed)
    out = []
    for r, c, e in shapes_edges:
        n = r * c
        bm = np.zeros((n_samples, n + 1), bool)
        b = np.arange(n_samples)[:, None]
        bm[b, rng.integers(0, r, (n_samples, c)) * c + np.arange(c)[None, :]] = True
        while True:
            deficit = e - bm[:, :n].sum(axis=1)
            act = np.flatnonzero(deficit > 0)
            if act.size == 0:
                break
            size = int(deficit[act].max())
            idx = rng.integers(0, n, (act.size, size))
            idx[np.arange(size)[None, :] >= deficit[act][:, None]] = n
            bm[act[:, None], idx] = True
        out.append(bm[:, :n].reshape(n_samples, r, c))
    return out


# --------------------------------------------------------------------------------------------------
# null (c): degree-preserving swaps
# --------------------------------------------------------------------------------------------------


def _swap_chain(key, dense, src, dst, n_steps: int):
    """Run checkerboard-swap chains. dense: bool (B, r, c); src, dst: int32 (B, E) edge lists."""
    import jax
    import jax.numpy as jnp

    B = dense.shape[0]
    e = src.shape[1]
    bidx = jnp.arange(B)

    def step(_, st):
        dense, src, dst, key = st
        key, k1 = jax.random.split(key)
        pick = jax.random.randint(k1, (2, B), 0, e)
        e1, e2 = pick[0], pick[1]
        a, x = src[bidx, e1], dst[bidx, e1]
        b, y = src[bidx, e2], dst[bidx, e2]
        ok = (a != b) & (x != y) & ~dense[bidx, a, y] & ~dense[bidx, b, x]
        dense = dense.at[bidx, a, x].set(jnp.where(ok, False, dense[bidx, a, x]))
        dense = dense.at[bidx, b, y].set(jnp.where(ok, False, dense[bidx, b, y]))
        dense = dense.at[bidx, a, y].set(dense[bidx, a, y] | ok)
        dense = dense.at[bidx, b, x].set(dense[bidx, b, x] | ok)
        dst = dst.at[bidx, e1].set(jnp.where(ok, y, x))
        dst = dst.at[bidx, e2].set(jnp.where(ok, x, y))
        return dense, src, dst, key

    dense, *_ = jax.lax.fori_loop(0, n_steps, step, (dense, src, dst, key))
    return dense


def _swap_numpy(rng: np.random.Generator, a: np.ndarray, n_samples: int, n_steps: int):
    """The same swap chains in numpy (vectorised over chains, a Python loop over steps)."""
    r, c = a.shape
    dense = np.broadcast_to(a, (n_samples, r, c)).copy()
    src0, dst0 = np.nonzero(a)
    e = src0.size
    src = np.broadcast_to(src0, (n_samples, e)).copy()
    dst = np.broadcast_to(dst0, (n_samples, e)).copy()
    bidx = np.arange(n_samples)
    picks = rng.integers(0, e, (n_steps, 2, n_samples))
    for t in range(n_steps):
        e1, e2 = picks[t]
        a_, x = src[bidx, e1], dst[bidx, e1]
        b_, y = src[bidx, e2], dst[bidx, e2]
        ok = (a_ != b_) & (x != y) & ~dense[bidx, a_, y] & ~dense[bidx, b_, x]
        if not ok.any():
            continue
        i = bidx[ok]
        a_, x, b_, y = a_[ok], x[ok], b_[ok], y[ok]
        dense[i, a_, x] = False
        dense[i, b_, y] = False
        dense[i, a_, y] = True
        dense[i, b_, x] = True
        dst[i, e1[ok]] = y
        dst[i, e2[ok]] = x
    return dense


_swap_jit = None
_prange = range  # numba.prange once numba compiles the kernel (plain range for the numpy fallback)


def _swap_kernel(dense, dst, src, seeds, n_steps):  # pragma: no cover - compiled by numba
    """Checkerboard-swap chains, one per leading index, each with its own random stream.

    dense: bool (B, r, c) and dst: int32 (B, E) are updated in place (the chains' states; they may
    be continued by another call); src: int32 (E,) the fixed source row of every edge (a swap keeps
    each edge's source row and exchanges targets); seeds: uint64 (B,) the chains' splitmix64
    states, advanced in place. Each attempt draws two edges uniformly (the top and bottom 32 bits of
    one splitmix64 output, Lemire's multiply-shift: bias below E / 2**32) and swaps their targets
    when both new cells are empty. Chains run in parallel threads (numba ``prange``); a chain's
    trajectory depends only on its seed, never on the thread count.
    """
    B = dense.shape[0]
    e64 = np.uint64(src.shape[0])
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    for b in _prange(B):
        s = seeds[b]
        D = dense[b]
        T = dst[b]
        for _ in range(n_steps):
            s = s + np.uint64(0x9E3779B97F4A7C15)
            z = s
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            e1 = np.int64(((z >> s32) * e64) >> s32)
            e2 = np.int64(((z & m32) * e64) >> s32)
            a = src[e1]
            x = T[e1]
            a2 = src[e2]
            y = T[e2]
            if a != a2 and x != y and not D[a, y] and not D[a2, x]:
                D[a, x] = False
                D[a2, y] = False
                D[a, y] = True
                D[a2, x] = True
                T[e1] = y
                T[e2] = x
        seeds[b] = s


_numba_kernel = None


def _have_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _numba_swaps():
    """The compiled :func:`_swap_kernel` (numba, cached on disk next to this module)."""
    global _numba_kernel, _prange
    if _numba_kernel is None:
        import numba

        _prange = numba.prange
        _numba_kernel = numba.njit(parallel=True, cache=True, nogil=True)(_swap_kernel)
    return _numba_kernel


def _degree_backend(backend: str) -> str:
    if backend not in ("auto", "numba", "jax", "numpy"):
        raise ValueError(
            f"backend must be 'auto', 'numba', 'jax' or 'numpy', got {backend!r} "
            "(auto: numba where installed, else JAX on an accelerator, numpy on CPU)"
        )
    if backend == "numba" and not _have_numba():
        raise ValueError("backend 'numba' needs numba (a mothlab dependency): pip install numba")
    if backend == "auto":
        return "numba" if _have_numba() else _backend("auto")
    return backend


class SwapChains:
    """Independent checkerboard-swap chains of one layer (null c), run in batches and continued on
    demand: ``chains.run(attempts)`` advances every chain by ``attempts`` swap attempts; the states
    are ``chains.dense`` (bool (B, r, c)) and ``chains.dst`` (the target of every edge).

    Each chain's random stream is a splitmix64 state drawn from ``rng``, so the samples depend only
    on the seed (not on the number of threads). Needs numba (see :func:`degree_layers` for the
    other backends).
    """

    def __init__(self, a: np.ndarray, n_chains: int, rng: np.random.Generator):
        a = np.asarray(a, bool)
        self.start = a
        src, dst = np.nonzero(a)
        self.src = src.astype(np.int32)
        self.dense = np.broadcast_to(a, (n_chains, *a.shape)).copy()
        self.dst = np.broadcast_to(dst.astype(np.int32), (n_chains, src.size)).copy()
        self.seeds = rng.integers(0, 2**64 - 1, n_chains, dtype=np.uint64, endpoint=True)
        self.attempts = 0

    @property
    def edges(self) -> int:
        return int(self.src.size)

    def run(self, attempts: int) -> np.ndarray:
        if self.edges >= 2 and attempts > 0:
            _numba_swaps()(self.dense, self.dst, self.src, self.seeds, int(attempts))
            self.attempts += int(attempts)
        return self.dense


def swap_attempts(edges: int, swaps_per_edge: float) -> int:
    """Swap attempts per chain for a layer of ``edges`` edges: ``swaps_per_edge × E``, at least
    100 (the chain length of :func:`degree_layers`)."""
    return int(max(100, swaps_per_edge * edges))


def degree_layers(
    layers, n_samples: int, seed: int = 0, swaps_per_edge: float = 10.0, backend: str = "auto"
):
    """Null (c) sampler: list of bool (n_samples, r_l, c_l) with every row and column sum of each
    layer equal to the real layer's (``layers``: list of 0/1 (r_l, c_l) arrays).

    Every sample is the end of its own checkerboard-swap chain started from the real layer,
    ``max(100, swaps_per_edge × E_l)`` attempts long; the chains are independent. ``backend``:
    "numba" (compiled chains in parallel threads, ~15 ns per attempt; the default where numba is
    installed), "jax" (vmapped chains, for accelerators), "numpy" (vectorised over chains, a Python
    loop over attempts) — the same chain in all three, with different random streams. See
    :func:`degree_mixing` for how many swaps per edge the chains need.
    """
    backend = _degree_backend(backend)
    if swaps_per_edge <= 0:
        raise ValueError(f"swaps_per_edge must be > 0, got {swaps_per_edge}")
    rng = np.random.default_rng(seed)
    out = []
    for a in layers:
        a = np.asarray(a, bool)
        e = int(a.sum())
        if e < 2:
            out.append(np.broadcast_to(a, (n_samples, *a.shape)).copy())
            continue
        steps = swap_attempts(e, swaps_per_edge)
        if backend == "numba":
            out.append(SwapChains(a, n_samples, rng).run(steps))
            continue
        if backend == "numpy":
            out.append(_swap_numpy(rng, a, n_samples, steps))
            continue
        import jax
        import jax.numpy as jnp

        global _swap_jit
        if _swap_jit is None:
            _swap_jit = jax.jit(_swap_chain, static_argnums=(4,))
        k = jax.random.PRNGKey(int(rng.integers(0, 2**31 - 1)))
        start = jnp.broadcast_to(jnp.asarray(a), (n_samples, *a.shape))
        src, dst = np.nonzero(a)
        src = jnp.broadcast_to(jnp.asarray(src, jnp.int32), (n_samples, e))
        dst = jnp.broadcast_to(jnp.asarray(dst, jnp.int32), (n_samples, e))
        out.append(np.asarray(_swap_jit(k, start, src, dst, steps)))
    return out


def _pair_overlap(dense: np.ndarray) -> np.ndarray:
    """Σ over row pairs of C(shared targets, 2) per chain (the layer's bi-fan count: its all-ones
    2×2 submatrices, so the Gram matrix of the shorter side gives it), float64 (B,)."""
    x = dense.astype(np.float32)  # shared counts < 2**24: exact in float32
    if x.shape[1] > x.shape[2]:
        x = x.transpose(0, 2, 1)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1))  # contiguous slices: BLAS, not numpy's loop
    g = np.matmul(np.ascontiguousarray(x), xt).astype(np.float64)
    g = g * (g - 1) / 2
    return (g.sum(axis=(1, 2)) - np.trace(g, axis1=1, axis2=2)) / 2


def degree_mixing(
    layers,
    n_chains: int = 64,
    checkpoints=(0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0),
    seed: int = 0,
    progress=None,
    cancel=None,
) -> dict:
    """Mixing diagnostic of the null (c) chains: how many swaps per edge they need.

    Runs ``n_chains`` independent chains of every layer (needs numba) and, at each checkpoint (in
    swaps per edge), records two statistics per chain: the fraction of the real layer's edges still
    present (1 at the start; it falls to its value under the uniform law) and the layer's bi-fan
    count (pairs of sources sharing two targets, the motif the swaps change most directly). A
    statistic has mixed at a checkpoint when its chain mean is within 3 standard errors of its mean
    at the longest checkpoint (whose chains are taken as the reference; so give that one at least
    twice the length you want to check).

    Returns
    -------
    dict with ``checkpoints`` (swaps per edge), and per layer (lists, one entry per layer with
    ≥ 2 edges): ``shape``, ``edges``, ``retained`` / ``retained_se`` and ``bifan`` / ``bifan_se``
    (chain means and standard errors per checkpoint), ``mixed_at`` (the first checkpoint from which
    both statistics stay within 3 standard errors of the reference, or None), and ``mixed_at_max``
    (the largest over layers: the swaps per edge the whole network needs by this diagnostic).
    """
    from mothlab.progress import check_cancel, report

    if not _have_numba():
        raise ValueError("degree_mixing needs numba (a mothlab dependency): pip install numba")
    if n_chains < 2:
        raise ValueError(f"n_chains must be >= 2 (standard errors need two), got {n_chains}")
    cps = sorted(float(c) for c in checkpoints)
    if len(cps) < 2 or cps[0] <= 0:
        raise ValueError(
            f"checkpoints must be >= 2 positive swaps-per-edge values, got {checkpoints}"
        )
    rng = np.random.default_rng(seed)
    res = {"checkpoints": cps, "n_chains": int(n_chains), "layers": []}
    layers = [np.asarray(a, bool) for a in layers if int(np.asarray(a).sum()) >= 2]
    for li, a in enumerate(layers):
        check_cancel(cancel)
        ch = SwapChains(a, n_chains, rng)
        e = ch.edges
        stats = {"retained": [], "bifan": []}
        for cp in cps:
            ch.run(int(round(cp * e)) - ch.attempts)
            ret = (ch.dense & a).sum(axis=(1, 2)) / e
            bf = _pair_overlap(ch.dense)
            stats["retained"].append(ret)
            stats["bifan"].append(bf)
        mixed = None
        for i in range(len(cps) - 1, -1, -1):
            ok = True
            for v in stats.values():
                ref, cur = v[-1], v[i]
                se = np.sqrt(ref.var(ddof=1) / n_chains + cur.var(ddof=1) / n_chains)
                if abs(cur.mean() - ref.mean()) > 3 * se + 1e-12 * abs(ref.mean()):
                    ok = False
            if not ok:
                break
            mixed = cps[i]
        res["layers"].append(
            {
                "shape": list(a.shape),
                "edges": e,
                "retained": [float(v.mean()) for v in stats["retained"]],
                "retained_se": [
                    float(v.std(ddof=1) / np.sqrt(n_chains)) for v in stats["retained"]
                ],
                "bifan": [float(v.mean()) for v in stats["bifan"]],
                "bifan_se": [float(v.std(ddof=1) / np.sqrt(n_chains)) for v in stats["bifan"]],
                "mixed_at": mixed if mixed is not None and mixed < cps[-1] else None,
            }
        )
        report(progress, (li + 1) / len(layers), f"layer {li + 1}/{len(layers)} mixed")
    m = [L["mixed_at"] for L in res["layers"]]
    res["mixed_at_max"] = None if any(x is None for x in m) else max(m, default=cps[0])
    return res


def sample_null(null: str, layers, n_samples: int, seed: int = 0, swaps_per_edge: float = 10.0):
    """Random networks for one real network in canonical form.

    Parameters
    ----------
    null : a name of :data:`NULLS` (or an old name of :data:`NULL_ALIASES`)
    layers : list of 0/1 arrays (r_l, c_l) (one network, canonical form). The two edge nulls place
        each layer's edges uniformly over the cells given: pass the live-node compression
        (``live_canonical``) for "edges_live_nodes" and the full layers for "edges_whole_layer";
        for "live_nodes" every row and column must hold an edge (compress first).

    Returns
    -------
    list of bool arrays (n_samples, r_l, c_l)
    """
    null = resolve_null(null)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    layers = [np.asarray(a, bool) for a in layers]
    se = [(a.shape[0], a.shape[1], int(a.sum())) for a in layers]
    if null in ANALYTIC_NULLS:
        return uniform_layers(se, n_samples, seed)
    if null == "live_nodes":
        for l, a in enumerate(layers):
            if not (a.any(axis=0).all() and a.any(axis=1).all()):
                raise ValueError(
                    f"layer {l} has nodes without edges; null 'live_nodes' needs the "
                    "network compressed to its live nodes (motifs.live_canonical)"
                )
        return live_node_layers(se, n_samples, seed)
    if null == "degrees":
        return degree_layers(layers, n_samples, seed, swaps_per_edge)
    return as_published_layers(se, n_samples, seed)


# --------------------------------------------------------------------------------------------------
# exact moments under the edge nulls (a uniform E-subset of each layer's cells)
# --------------------------------------------------------------------------------------------------


def _comb(n, k):
    return math.comb(n, k) if 0 <= k <= n else 0


def _falling(n, k):
    out = 1
    for i in range(k):
        out *= n - i
    return out


class _Layer:
    """Moments of cell indicators of a uniform e-subset of an r×c matrix: p(k) = P(k given distinct
    cells all present) = e^(k) / (rc)^(k) (falling factorials), exact Fractions."""

    def __init__(self, r, c, e):
        self.r, self.c, self.e = r, c, e
        self._p = {}

    def p(self, k):
        if k not in self._p:
            n = self.r * self.c
            self._p[k] = Fraction(_falling(self.e, k), _falling(n, k)) if k <= n else Fraction(0)
        return self._p[k]


def _degree_sum_moments(L: _Layer, k: int, by_row: bool):
    """Mean and variance of Σ_nodes C(deg, k) over the rows (out-degrees) or columns of one layer."""
    n_nodes, m = (L.r, L.c) if by_row else (L.c, L.r)
    ck = _comb(m, k)
    mean = n_nodes * ck * L.p(k)
    sq_same = sum(ck * _comb(k, j) * _comb(m - k, k - j) * L.p(2 * k - j) for j in range(k + 1))
    second = n_nodes * sq_same + n_nodes * (n_nodes - 1) * ck * ck * L.p(2 * k)
    return mean, second - mean * mean


def _bifan_moments(L: _Layer):
    r, c = L.r, L.c
    mean = _comb(r, 2) * _comb(c, 2) * L.p(4)
    second = Fraction(0)
    for a in range(3):
        na = _comb(r, 2) * _comb(2, a) * _comb(r - 2, 2 - a)
        for b in range(3):
            nb = _comb(c, 2) * _comb(2, b) * _comb(c - 2, 2 - b)
            second += na * nb * L.p(8 - a * b)
    return mean, second - mean * mean


def _path_mean(Ls, start, length):
    """E[number of paths over layers start..start+length-1]."""
    m = Fraction(Ls[start].r)
    for j in range(start, start + length):
        m *= Ls[j].c * Ls[j].p(1)
    return m


def _path_cross(Ls, s1, k1, s2, k2):
    """E[T1 T2] for path counts T1 (layers s1..s1+k1-1) and T2 (s2..s2+k2-1).

    Pair-state recursion: by exchangeability of the cells within a layer, the joint weight of the
    two paths' current nodes depends only on whether they coincide, so two numbers (Σ over all
    pairs, Σ over coincident pairs) carry the state through each layer. Bias rows (sources only)
    start paths but no path arrives at them.
    """
    lo, hi = min(s1, s2), max(s1 + k1, s2 + k2)
    mult = Fraction(1)
    state = None  # None | ("single", U) | ("pair", S_all, S_diag)
    for j in range(lo, hi + 1):
        # paths ending here (their last node is in this layer's row set)
        ends = [(s + k == j) for s, k in ((s1, k1), (s2, k2))]
        if state is not None and state[0] == "pair" and any(ends):
            if all(ends):
                return mult * state[1]
            state = ("single", state[1])
        elif state is not None and state[0] == "single" and any(ends):
            mult *= state[1]
            state = None
        if j == hi:
            return mult if state is None else mult * state[1]
        L = Ls[j]
        starts = [(s == j) for s in (s1, s2)]
        if all(starts):
            state = ("pair", Fraction(L.r * L.r), Fraction(L.r))
        elif any(starts):
            if state is None:
                state = ("single", Fraction(L.r))
            else:
                u = state[1]  # uniform over the node rows, zero on bias rows
                state = ("pair", u * L.r, u)
        if state is None:  # between two paths that share no layer
            continue
        # apply layer j
        if state[0] == "single":
            state = ("single", L.c * L.p(1) * state[1])
        else:
            s_all, s_diag = state[1], state[2]
            t = L.p(2) * s_all
            d = t + (L.p(1) - L.p(2)) * s_diag
            state = ("pair", L.c * d + L.c * (L.c - 1) * t, L.c * d)
    raise AssertionError("unreachable")


def _path_total_moments(Ls, length):
    starts = range(len(Ls) - length + 1)
    mean = sum((_path_mean(Ls, s, length) for s in starts), Fraction(0))
    second = sum(
        (_path_cross(Ls, s, length, t, length) for s in starts for t in starts), Fraction(0)
    )
    return mean, second - mean * mean


def _biparallel_moments(Ls):
    L = len(Ls)
    means, var = [], Fraction(0)
    for l in range(L - 1):
        A, Bm = Ls[l], Ls[l + 1]
        na, nb, nd = A.r, A.c, Bm.c
        pairs = _comb(nb, 2)
        means.append(na * pairs * nd * A.p(2) * Bm.p(2))
        second = Fraction(0)
        for s in range(3):
            npair = pairs * _comb(2, s) * _comb(nb - 2, 2 - s)
            for ea in (0, 1):
                cnt_a = na if ea else na * (na - 1)
                for ed in (0, 1):
                    cnt_d = nd if ed else nd * (nd - 1)
                    second += cnt_a * cnt_d * npair * A.p(4 - ea * s) * Bm.p(4 - ed * s)
        var += second - means[-1] ** 2
    for l in range(L - 2):
        A, Bm, C = Ls[l], Ls[l + 1], Ls[l + 2]
        n1 = A.r * _comb(A.c, 2) * Bm.c
        n2 = Bm.r * _comb(Bm.c, 2) * C.c
        n_ov = n1 * 2 * (Bm.c - 1) * C.c
        cross = A.p(2) * C.p(2) * (n_ov * Bm.p(3) + (n1 * n2 - n_ov) * Bm.p(4))
        var += 2 * (cross - means[l] * means[l + 1])
    return sum(means, Fraction(0)), var


@lru_cache(maxsize=4096)
def _edges_moments_cached(shapes_edges, converging3):
    Ls = [_Layer(r, c, e) for r, c, e in shapes_edges]
    out = {}
    out["edges"] = (Fraction(sum(e for _, _, e in shapes_edges)), Fraction(0))
    for name, k, by_row in (
        ("diverging2", 2, True),
        ("diverging3", 3, True),
        ("converging2", 2, False),
        ("converging3", 2 if converging3 == "published" else 3, False),
    ):
        mv = [_degree_sum_moments(L, k, by_row) for L in Ls]
        out[name] = (sum((m for m, _ in mv), Fraction(0)), sum((v for _, v in mv), Fraction(0)))
    mv = [_bifan_moments(L) for L in Ls]
    out["bifan"] = (sum((m for m, _ in mv), Fraction(0)), sum((v for _, v in mv), Fraction(0)))
    out["chain2"] = _path_total_moments(Ls, 2) if len(Ls) >= 2 else (Fraction(0), Fraction(0))
    out["chain3"] = _path_total_moments(Ls, 3) if len(Ls) >= 3 else (Fraction(0), Fraction(0))
    out["biparallel"] = _biparallel_moments(Ls)
    return out


def edges_moments(shapes_edges, converging3: str = "exact") -> dict[str, tuple[Fraction, Fraction]]:
    """Exact mean and variance of every motif count (chains as paths) when each layer's ``E_l``
    edges are a uniformly random subset of its ``r_l × c_l`` cells: the moments of both edge nulls
    ("edges_live_nodes": shapes of the live-node compression; "edges_whole_layer": full shapes).

    Parameters
    ----------
    shapes_edges : sequence of (r_l, c_l, E_l) per layer of a network in canonical form (the first
        c_{l-1} rows of layer l are the nodes reached from layer l-1, any further rows bias nodes).

    Returns
    -------
    dict motif → (mean, variance) as exact Fractions.

    Derivation: a count is a sum over motif instances of products of cell indicators. Under a
    uniform e-subset of n cells, any k distinct cells are all present with probability
    e^(k)/n^(k) (falling factorials), and layers are independent, so E[count] and E[count²] reduce
    to counting instances and pairs of instances by how many cells they share: binomial sums for
    degree motifs and bi-fans, a two-number pair-state recursion for paths (chains), and the
    overlap cases of two diamonds (same layer pair, or sharing the middle layer) for bi-parallels.
    """
    key = tuple((int(r), int(c), int(e)) for r, c, e in shapes_edges)
    return _edges_moments_cached(key, converging3)
