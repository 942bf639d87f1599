"""Motif-guided sparse topologies: masks whose motif z-scores match a target profile.

The question of the thesis plan (SCIENCE.md §7): pruned networks end with hubs of high fan-in and
fan-out and many bi-parallels (positive diverging, converging, bi-fan and bi-parallel z-scores).
Can such a topology be *built* at a given density, and does it train better than a random one?

Target profile
    :func:`target_profile` measures it on an experiment: the median z-score of every motif (null
    ``"edges"``, exact moments, weight masks only, ghost/dead nodes removed) over the networks at
    their optimally sparse level; when fewer than ``min_networks`` networks are optimally sparse,
    over all networks at the sparse level with the lowest median test loss (the record says which).
    :data:`DEFAULT_TARGET` is that profile measured on the bundled default experiment.

Generator (:func:`motif_masks`), per network and layer, with an exact edge count ``E_l``:
    every node ``v`` gets a hubness ``g_v ~ N(0, 1)`` and a community ``c_v`` (one of ``K``); the
    layer keeps the ``E_l`` cells of largest ``σ (g_a + ρ g_b) + log β [c_a = c_b] + Gumbel`` —
    the Gumbel-top-k trick, i.e. ``E_l`` cells drawn without replacement with probability
    ``∝ exp(σ h_a) exp(σ g_b) β^[same community]``, where ``g_b`` is the fan-in hubness of a
    target and ``h_a = ρ g_a + √(1−ρ²) ε_a`` the fan-out hubness of a source: ``ρ`` sets how much
    hubs of fan-in are also hubs of fan-out (which drives the chain z-scores). ``σ`` (heavy-tailed, log-normal degrees) raises the diverging/converging
    and bi-fan z-scores; ``β`` (communities shared across layers: preferential wiring of a→b→d
    diamonds) raises bi-fans and bi-parallels. For the reverse control (``anti=True``, target
    ``−profile``) the family is *more regular than random*: a fraction ``λ`` of the edges comes
    from a balanced design (every row and every column of a layer within one edge of the same
    degree, columns visited cyclically in a random order) and the rest uniformly at random, so
    degree variance — and the diverging/converging/bi-fan z-scores with it — falls below the null.
    The parameters (σ, β, ρ) are fitted by coordinate search (λ by a grid) on a fixed pilot batch of networks
    (seeds independent of the run), then every network draws its own mask from its own seed: a
    network's mask depends only on (seed, index, layer sizes, counts, target).

Closeness (measured, see the README's "Sparse from the start"): ``MotifMasks.distance`` is the
RMS over motifs of ``(median z − target) / max(|target|, 1)``. In the comparison study
(``mothlab compare``; 10-32-32-32-8-7 and 64-64-32-10 at densities 0.1 and 0.3) the motif masks
reach 0.34–0.46 (bi-parallel z +7.5 to +14 for a target of +19.6: small layers cap the z-scores)
and every median z of the anti-motif masks is ≤ 0 (distance 0.69–0.79 from the mirrored
target); random masks sit near z = 0 (distance ≈ 1). The tests require ≤ 0.6 on a 10-16-16-7
network at density 0.3, > 0.9 for random masks, and median diverging, converging, bi-fan and
bi-parallel z-scores > +3 (motif) and < −1.5 (anti-motif).

Layering: this module (analysis) imports ``mothlab.nets``; nets never imports it. The runner
receives the masks as plain arrays: ``mothlab.nets.sparse.sparse_init(initial_masks=...)`` or a
``mask_fn(layer_sizes, counts, n_networks, seed) -> masks`` callable (:func:`mask_fn`) chosen by
the layer above (CLI, app, study), which is what ``method="motif"`` passes to the runner.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from mothlab.analysis import motifs as _m
from mothlab.analysis.nulls import degree_layers
from mothlab.analysis.zscores import network_seed, zscores

#: Motifs the generator matches (the edge count is fixed by the density: its z is undefined).
MATCHED = tuple(k for k in _m.MOTIFS if k != "edges")

#: Median z-scores (null "edges", weight masks, no biases) of the bundled default experiment
#: (40 networks of 10-50-50-50-8-7) at its sparse level with the lowest median test loss (55 %
#: sparsity; fewer than 5 networks are optimally sparse there), measured with
#: ``target_profile("assets/default_experiment.zarr")``.
DEFAULT_TARGET = {
    "diverging2": 18.3,
    "converging2": 10.2,
    "chain2": 2.8,
    "diverging3": 18.9,
    "converging3": 10.8,
    "chain3": 4.2,
    "bifan": 18.3,
    "biparallel": 19.6,
}

_SIGMAS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
_BETAS = (1.0, 3.0, 10.0)
_RHOS = (-1.0, -0.5, 0.0, 0.5, 1.0)
_LAMBDAS = (0.5, 1.0)  # measured: 1.0 (fully balanced) wins on every tried layer set
N_COMMUNITIES = 4
N_PILOT = 6


def target_profile(exp_or_path, min_networks: int = 5, threshold: float | None = None) -> dict:
    """Median motif z-scores of an experiment's optimally sparse networks (see module doc).

    Returns ``{"target": {motif: z}, "basis": str, "n_networks": int}``.
    """
    from mothlab.nets import load_experiment

    exp = load_experiment(exp_or_path) if not hasattr(exp_or_path, "masks") else exp_or_path
    thr = float(threshold if threshold is not None else exp.config.threshold)
    opt = exp.optimal_level(thr)
    ok = np.flatnonzero(opt > 0)  # level 0 is dense: no motif structure to copy
    if len(ok) >= min_networks:
        per_level = {}
        for i in ok:
            per_level.setdefault(int(opt[i]), []).append(int(i))
        zs = []
        for lv, ids in per_level.items():
            ms = [m[ids] for m in exp.masks(lv)]
            zs.append(zscores(ms, None, null="edges").z)
        z = np.concatenate(zs)
        basis = f"{len(ok)} networks at their optimally sparse level (test loss < {thr:g})"
    else:
        med = np.nanmedian(exp.test_loss[: exp.levels_done], axis=1)
        sparse = [i for i in range(exp.levels_done) if exp.sparsity_levels[i] > 0]
        if not sparse:
            raise ValueError(
                f"{exp.path} has no finished sparse level to take a motif profile "
                "from; run more levels first."
            )
        lv = min(sparse, key=lambda i: med[i])
        z = zscores(exp.masks(lv), None, null="edges").z
        basis = (
            f"only {len(ok)} networks optimally sparse (< {min_networks}); all "
            f"{exp.n_networks} networks at the sparse level with the lowest median test "
            f"loss ({exp.sparsity_levels[lv]:.0%} sparsity)"
        )
        ok = np.arange(exp.n_networks)
    cols = [_m.MOTIFS.index(k) for k in MATCHED]
    with np.errstate(all="ignore"):
        target = {k: float(np.nanmedian(z[:, c])) for k, c in zip(MATCHED, cols)}
    return {"target": target, "basis": basis, "n_networks": int(len(ok))}


# ------------------------------------------------------------------------------- samplers
def _gumbel_topk(scores: np.ndarray, k: int, rng) -> np.ndarray:
    s = scores + rng.gumbel(size=scores.shape)
    flat = s.ravel()
    keep = np.zeros(flat.size, bool)
    keep[np.argpartition(-flat, k - 1)[:k]] = True
    return keep.reshape(scores.shape)


def _balanced(r: int, c: int, k: int, rng) -> np.ndarray:
    """``k`` cells of an ``r × c`` layer, every row and column within one edge of equal degree."""
    m = np.zeros((r, c), bool)
    rows = rng.permutation(r)
    cols = rng.permutation(c)
    deg = np.full(r, k // r)
    deg[: k % r] += 1
    off = 0
    for i, d in zip(rows, deg):
        m[i, cols[(off + np.arange(d)) % c]] = True
        off += d
    return m


def _sample_network(rng, layer_sizes, counts, params: dict) -> list[np.ndarray]:
    sizes = [int(s) for s in layer_sizes]
    out = []
    if params["family"] == "hubs":
        g = [rng.standard_normal(n) for n in sizes]
        comm = [rng.integers(0, N_COMMUNITIES, n) for n in sizes]
        sigma, rho, logb = params["sigma"], params["rho"], math.log(params["beta"])
        # a hidden node's fan-out hubness: correlated with its fan-in hubness by rho
        g_out = [g[0]] + [
            rho * a + math.sqrt(1.0 - rho * rho) * rng.standard_normal(a.size) for a in g[1:]
        ]
        for l, k in enumerate(counts):
            src = sigma * g_out[l]
            dst = sigma * g[l + 1]
            same = comm[l][:, None] == comm[l + 1][None, :]
            out.append(_gumbel_topk(src[:, None] + dst[None, :] + logb * same, int(k), rng))
        return out
    lam = params["lambda"]
    for l, k in enumerate(counts):
        r, c = sizes[l], sizes[l + 1]
        # balanced degrees, then uniform among the matrices with those degrees (checkerboard
        # swaps of the degree-preserving null): regular margins without the design's pattern
        # one chain per mask: the numpy sampler (numba's compile, tens of seconds per process,
        # buys nothing for a single short chain)
        bal = degree_layers(
            [_balanced(r, c, int(k), rng)], 1, seed=int(rng.integers(0, 2**31 - 1)), backend="numpy"
        )[0][0]
        n_bal = int(round(lam * k))
        m = np.zeros((r, c), bool)
        cells = np.flatnonzero(bal)
        m.flat[rng.choice(cells, n_bal, replace=False)] = True
        free = np.flatnonzero(~m.ravel())
        m.flat[rng.choice(free, int(k) - n_bal, replace=False)] = True
        out.append(m)
    return out


def _batch(seeds, layer_sizes, counts, params) -> list[np.ndarray]:
    nets = [_sample_network(np.random.default_rng(s), layer_sizes, counts, params) for s in seeds]
    return [np.stack([n[l] for n in nets]) for l in range(len(counts))]


def profile_of(masks) -> np.ndarray:
    """z-scores (null "edges", exact) of a batch of weight masks: (n_networks, len(MATCHED))."""
    z = zscores(list(masks), None, null="edges").z
    return z[:, [_m.MOTIFS.index(k) for k in MATCHED]]


def distance(z: np.ndarray, target: dict) -> float:
    """RMS over motifs of ``(median z − target) / max(|target|, 1)`` (0 = exact match)."""
    t = np.array([target[k] for k in MATCHED], float)
    with warnings.catch_warnings():  # a motif undefined in every network: an all-NaN column
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        med = np.nanmedian(np.atleast_2d(z), axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    return float(np.sqrt(np.mean(((med - t) / np.maximum(np.abs(t), 1.0)) ** 2)))


@dataclass
class MotifMasks:
    """Generated masks and how close they came.

    ``masks``: list of bool ``(n_networks, n_in, n_out)``; ``z``: (n_networks, len(MATCHED))
    z-scores they have; ``target``: the profile aimed at; ``params``: fitted generator
    parameters; ``distance``: :func:`distance` of ``z`` to ``target``.
    """

    masks: list
    z: np.ndarray
    target: dict
    params: dict
    distance: float
    fit: list = field(default_factory=list)

    def median(self) -> dict:
        with np.errstate(all="ignore"):
            return {k: float(np.nanmedian(self.z[:, j])) for j, k in enumerate(MATCHED)}


#: fitted generator parameters by (sizes, counts, target, anti, seed, n_pilot): the fit is a
#: pure function of these (a fixed pilot batch), so a second run, a resume or a test that asks
#: again reuses it instead of ~30 pilot evaluations
_FITS: dict = {}


def fit_generator(
    layer_sizes, counts, target: dict, *, anti: bool = False, seed: int = 0, n_pilot: int = N_PILOT
) -> tuple[dict, list]:
    """Fit the generator's parameters so that a pilot batch's median z is nearest
    ``target``. Returns ``(params, [(params, distance), ...])`` (memoised: the same arguments
    give the same fit)."""
    key = (
        tuple(int(s) for s in layer_sizes),
        tuple(int(k) for k in counts),
        tuple(sorted((k, float(v)) for k, v in target.items())),
        bool(anti),
        int(seed),
        int(n_pilot),
    )
    if key not in _FITS:
        _FITS[key] = _fit(layer_sizes, counts, target, anti, seed, n_pilot)
    params, tried = _FITS[key]
    return dict(params), [(dict(p), d) for p, d in tried]


def _fit(layer_sizes, counts, target, anti, seed, n_pilot):
    pilot = [network_seed(seed, 10_000_000 + j) for j in range(n_pilot)]
    tried = []
    seen = {}

    def score(p):
        key = tuple(sorted(p.items()))
        if key not in seen:
            seen[key] = distance(profile_of(_batch(pilot, layer_sizes, counts, p)), target)
            tried.append((dict(p), seen[key]))
        return seen[key]

    if anti:
        for lam in _LAMBDAS:
            score({"family": "balanced", "lambda": lam})
        return min(tried, key=lambda t: t[1])[0], tried
    # coordinate search over (sigma, beta, rho), two sweeps (~30 evaluations, not the 105 cells)
    best = {"family": "hubs", "sigma": 1.0, "beta": 3.0, "rho": 0.5}
    for _ in range(2):
        for name, values in (("sigma", _SIGMAS), ("rho", _RHOS), ("beta", _BETAS)):
            best = min(({**best, name: v} for v in values), key=score)
    return best, tried


def motif_masks(
    layer_sizes,
    counts,
    n_networks: int,
    seed: int = 0,
    target: dict | None = None,
    *,
    anti: bool = False,
    progress=None,
) -> MotifMasks:
    """Masks of ``n_networks`` networks with exactly ``counts[l]`` weights in layer ``l`` whose
    motif z-scores approach ``target`` (default :data:`DEFAULT_TARGET`), or its opposite
    (``anti=True``: the target becomes ``−target``). Network ``i`` draws from
    ``network_seed(seed, i)``. See the module docstring for the generator."""
    from mothlab.progress import report

    sizes = [int(s) for s in layer_sizes]
    if len(counts) != len(sizes) - 1:
        raise ValueError(
            f"counts has {len(counts)} entries, the network has {len(sizes) - 1} weight layers."
        )
    for l, (k, a, b) in enumerate(zip(counts, sizes[:-1], sizes[1:])):
        if not 1 <= int(k) <= a * b:
            raise ValueError(f"layer {l} ({a}×{b}) cannot keep {k} weights; use 1..{a * b}.")
    base = dict(DEFAULT_TARGET if target is None else target)
    missing = set(MATCHED) - set(base)
    if missing:
        raise ValueError(
            f"target profile lacks motifs {sorted(missing)}; give a z-score for "
            f"each of {list(MATCHED)}."
        )
    tgt = {k: (-v if anti else v) for k, v in base.items() if k in MATCHED}
    report(progress, 0.0, "fitting the motif generator on a pilot batch")
    params, tried = fit_generator(sizes, counts, tgt, anti=anti, seed=seed)
    report(progress, 0.5, f"drawing {n_networks} {'anti-' if anti else ''}motif masks")
    masks = _batch([network_seed(seed, i) for i in range(n_networks)], sizes, counts, params)
    z = profile_of(masks)
    report(progress, 1.0, "motif masks ready")
    return MotifMasks(
        masks=masks, z=z, target=tgt, params=params, distance=distance(z, tgt), fit=tried
    )


def mask_fn(target: dict | None = None, anti: bool = False):
    """A ``mask_fn(layer_sizes, counts, n_networks, seed) -> list of bool masks`` for the runner
    (``mothlab.nets.sparse``), so nets gets motif-guided masks without importing analysis."""

    def make(layer_sizes, counts, n_networks, seed):
        return motif_masks(layer_sizes, counts, n_networks, seed, target, anti=anti).masks

    return make


def _provider(config):
    target = dict(config.motif_target) if config.motif_target else None
    return mask_fn(target, anti=config.method == "anti-motif")


def _register():
    from mothlab.nets.sparse import register_mask_provider

    register_mask_provider("motif", _provider)
    register_mask_provider("anti-motif", _provider)


_register()
