"""Sparsity analyses of a train-and-prune experiment (Figs 2–5 and Table 1 of the first paper).

The one entry point is :func:`sparsity_result`: it reads an experiment's losses once and returns a
frozen :class:`SparsityResult` that every view, figure and report consumes as it is — the loss
distribution per level, the optimal level of every network under both selection rules
(:data:`SELECTION_RULES`), the breakdown level, the step caps, Table 1, input connectivity, node
states (live / ghost / dead / removed) and THE rule for which level and network to show
(:meth:`SparsityResult.level_to_show`) with a caption that says what is shown.

>>> import numpy as np
>>> loss = np.array([[5e-4, 2e-3], [2e-3, 5e-4], [5e-4, 5e-4]])   # (levels, networks)
>>> optimal_levels(loss, 1e-3, "paper").tolist(), optimal_levels(loss, 1e-3, "sparsest").tolist()
([0, -1], [2, 2])

The older per-function helpers (:func:`loss_table`, :func:`optimal_counts`,
:func:`remaining_weights`, :func:`input_connectivity`, :func:`ghost_dead_nodes`,
:func:`breakdown_level`) stay for the figures that use them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np

from mothlab.analysis.motifs import prune_ghost_dead

__all__ = [
    "SELECTION_RULES",
    "NODE_STATES",
    "LIVE",
    "GHOST",
    "DEAD",
    "REMOVED",
    "INPUT",
    "OUTPUT",
    "SparsityResult",
    "Shown",
    "sparsity_result",
    "optimal_levels",
    "format_loss",
    "node_states",
    "load",
    "threshold_of",
    "loss_table",
    "optimal_counts",
    "remaining_weights",
    "input_connectivity",
    "ghost_dead_nodes",
    "breakdown_level",
]

SELECTION_RULES = {
    "paper": "sparsest level with it and every denser level under the threshold",
    "sparsest": "sparsest level under the threshold",
}
"""The two rules for a network's optimally sparse level: name → what it selects."""

NODE_STATES = ("live", "ghost", "dead", "removed", "input", "output")
"""Node state codes of :func:`node_states` (index = code)."""
LIVE, GHOST, DEAD, REMOVED, INPUT, OUTPUT = range(6)


# ------------------------------------------------------------------------------ small helpers


def load(exp_or_path):
    """An :class:`~mothlab.nets.Experiment` from itself or from the path of its store."""
    if isinstance(exp_or_path, (str, Path)):
        from mothlab.nets import load_experiment  # nets imports JAX (~1.2 s): only when needed

        return load_experiment(exp_or_path)
    for attr in ("masks", "sparsity_levels", "n_networks", "test_loss"):
        if not hasattr(exp_or_path, attr):
            raise ValueError(
                f"expected an Experiment (or the path of its store); "
                f"{type(exp_or_path).__name__} has no {attr!r}"
            )
    return exp_or_path


def threshold_of(exp, threshold: float | None = None) -> float:
    """``threshold``, or the experiment's own (``config.threshold``) when None; must be > 0."""
    t = threshold
    if t is None:
        t = getattr(getattr(exp, "config", None), "threshold", None) or 1e-3
    t = float(t)
    if not t > 0 or not math.isfinite(t):
        raise ValueError(
            f"threshold must be a finite number > 0 (a scaled MSE, paper: 1e-3), got {threshold!r}."
        )
    return t


def optimal_levels(loss, threshold: float, rule: str = "paper") -> np.ndarray:
    """Each network's optimally sparse level from losses ``(L, n)`` → ``(n,)`` int, −1 for none.

    ``"paper"``: the sparsest level such that it and every denser level are under ``threshold``;
    ``"sparsest"``: the sparsest level under ``threshold`` whatever came before. NaN (a level not
    evaluated) counts as not under the threshold.
    """
    if rule not in SELECTION_RULES:
        raise ValueError(f"rule must be one of {list(SELECTION_RULES)}, got {rule!r}")
    loss = np.asarray(loss, float)
    if loss.ndim != 2:
        raise ValueError(f"loss must be (levels, networks), got shape {loss.shape}")
    with np.errstate(invalid="ignore"):
        below = loss < threshold
    if rule == "paper":
        return (np.cumprod(below, axis=0).sum(axis=0) - 1).astype(int)
    L = below.shape[0]
    return np.where(below.any(0), L - 1 - np.argmax(below[::-1], axis=0), -1).astype(int)


def node_states(masks, biases=None) -> list[np.ndarray]:
    """Per node layer, int codes of :data:`NODE_STATES` for one network.

    masks : list of 0/1 arrays ``(n_l, n_{l+1})``; biases : optional list of ``(n_{l+1},)``
    (a hidden node fed by its bias alone is not a ghost, as in the motif counts).
    Inputs are ``INPUT`` and outputs ``OUTPUT``; a hidden node is ``GHOST`` (no input), ``DEAD``
    (no output), ``REMOVED`` (it had both, but lost them when ghosts and dead nodes were removed
    to a fixed point, :func:`mothlab.analysis.motifs.prune_ghost_dead`) or ``LIVE``.

    >>> import numpy as np
    >>> m = [np.array([[1, 0]]), np.array([[1], [1]]), np.array([[1]])]
    >>> [s.tolist() for s in node_states(m)]
    [[4], [0, 1], [0], [5]]
    """
    ms = [np.asarray(m) != 0 for m in masks]
    bs = None if biases is None else [np.asarray(b) != 0 for b in biases]
    live, _ = prune_ghost_dead(ms, bs)
    sizes = [ms[0].shape[0]] + [m.shape[1] for m in ms]
    out = [np.full(sizes[0], INPUT, np.int8)]
    for l in range(1, len(sizes) - 1):
        has_in = ms[l - 1].any(axis=0) | (bs[l - 1] if bs is not None else False)
        has_out = ms[l].any(axis=1)
        alive = live[l - 1].any(axis=0) | live[l].any(axis=1)
        st = np.full(sizes[l], REMOVED, np.int8)
        st[alive] = LIVE
        st[~has_out & ~alive] = DEAD
        st[~has_in & ~alive] = GHOST
        out.append(st)
    out.append(np.full(sizes[-1], OUTPUT, np.int8))
    return out


def format_loss(x: float, digits: int = 1) -> str:
    """A loss or threshold as people read it: ``8.1e-4``, ``1e-3`` (no padded exponent);
    'not evaluated' for NaN."""
    if not math.isfinite(x):
        return "not evaluated"
    m, e = f"{x:.{digits}e}".split("e")
    if digits and set(m.split(".")[-1]) == {"0"} and x == float(f"{x:.0e}"):
        m = m.split(".")[0]
    return f"{m}e{int(e)}"


def _pct(s: float) -> str:
    return f"{100 * float(s):.4g} %"


class Shown(tuple):
    """``(level, network)`` to show, with ``reason``: a phrase saying why this one."""

    def __new__(cls, level: int, network: int, reason: str):
        self = super().__new__(cls, (int(level), int(network)))
        self.reason = reason
        return self

    @property
    def level(self) -> int:
        return self[0]

    @property
    def network(self) -> int:
        return self[1]


# ------------------------------------------------------------------------------ the result


@dataclasses.dataclass(frozen=True)
class SparsityResult:
    """Loss versus sparsity of an experiment and everything read off it.

    Arrays: ``sparsity`` (L,) per-layer sparsity of each level, ``loss`` (L, n) the chosen loss
    (``which``: test, val or train; NaN for levels not done), ``median``/``q25``/``q75`` (L,),
    ``capped`` (L,) int networks that hit a step cap at each level (0 when the store predates
    caps being recorded). ``levels_done``, ``threshold``, ``which``, ``n_networks``,
    ``layer_sizes``. Masks are read from the experiment on demand (``experiment``).
    """

    experiment: object = dataclasses.field(repr=False)
    sparsity: np.ndarray
    levels_done: int
    threshold: float
    which: str
    loss: np.ndarray = dataclasses.field(repr=False)
    median: np.ndarray = dataclasses.field(repr=False)
    q25: np.ndarray = dataclasses.field(repr=False)
    q75: np.ndarray = dataclasses.field(repr=False)
    capped: np.ndarray = dataclasses.field(repr=False)
    n_networks: int = 0
    layer_sizes: tuple = ()

    # -- optimal levels -------------------------------------------------------------------
    def optimal_level(self, rule: str = "paper") -> np.ndarray:
        """(n,) each network's optimal level under ``rule`` (:data:`SELECTION_RULES`), −1 none."""
        return optimal_levels(self.loss[: self.levels_done], self.threshold, rule)

    def optimal_counts(self, rule: str = "paper") -> np.ndarray:
        """(L,) how many networks are optimally sparse at each level under ``rule``."""
        opt = self.optimal_level(rule)
        return np.bincount(opt[opt >= 0], minlength=len(self.sparsity))[: len(self.sparsity)]

    def n_without(self, rule: str = "paper") -> int:
        """Networks with no optimal level under ``rule`` (even the dense level fails for the
        paper's rule; no level under the threshold for the other)."""
        return int((self.optimal_level(rule) < 0).sum())

    def n_reaching(self) -> int:
        """Networks with at least one level under the threshold."""
        with np.errstate(invalid="ignore"):
            return int((self.loss[: self.levels_done] < self.threshold).any(axis=0).sum())

    def optimal_sentence(self, rule: str = "paper") -> str:
        """One true sentence about the optimal levels under ``rule``, naming the rule, e.g.
        ``"29 of 40 networks have an optimal level under the 'sparsest' rule (sparsest level
        under the threshold 1e-3), median 65 %; 29 of 40 reach the threshold at some level."``
        (the median is the lower one, the level :meth:`level_to_show` opens on)."""
        opt = self.optimal_level(rule)
        have = int((opt >= 0).sum())
        head = (
            f"{have} of {self.n_networks} networks have an optimal level under the {rule!r} "
            f"rule ({SELECTION_RULES[rule]} {format_loss(self.threshold)})"
        )
        if have:
            head += f", median {self.level_label(int(np.sort(opt[opt >= 0])[(have - 1) // 2]))}"
        return (
            f"{head}; {self.n_reaching()} of {self.n_networks} reach the threshold at some level."
        )

    def breakdown_level(self) -> int:
        """The first level after the level of lowest median loss whose median loss is at or above
        the threshold (−1 if none). Counting from the minimum (not from the dense level) keeps
        the answer meaningful when the dense networks are undertrained and improve during the
        first retraining levels."""
        med = self.median[: self.levels_done]
        if not np.isfinite(med).any():
            return -1
        best = int(np.nanargmin(med))
        bad = np.flatnonzero(~(med[best + 1 :] < self.threshold))
        return int(best + 1 + bad[0]) if bad.size else -1

    # -- per-level tables -------------------------------------------------------------------
    def _levels(self, level) -> np.ndarray:
        """An int, a rule name (each network at its optimal level) or an (n,) array → (n,)."""
        n = self.n_networks
        if isinstance(level, str):
            return self.optimal_level("paper" if level == "optimal" else level)
        if np.ndim(level) == 0:
            lv = int(level)
            if not 0 <= lv < self.levels_done:
                raise ValueError(
                    f"level must be in [0, {self.levels_done}) (levels done), got {level!r}"
                )
            return np.full(n, lv)
        lv = np.asarray(level, int)
        if lv.shape != (n,):
            raise ValueError(
                f"levels must be an int, a rule name or an array of {n} levels, "
                f"got shape {lv.shape}"
            )
        return lv

    def table1(self, rule: str = "paper") -> dict:
        """Table 1: weights left per layer, each network at its optimal level under ``rule``
        (networks without one are left out). ``{"layers" ["10→400", ...], "total", "mean",
        "var", "min", "max" (n_layers,), "counts" (n_used, n_layers), "networks" (n_used,),
        "rule"}``."""
        out = remaining_weights(self.experiment, self._levels(rule))
        out["rule"] = rule
        return out

    def input_connectivity(self, level) -> np.ndarray:
        """Connections from each input variable to hidden layer 1: ``(n_inputs, n_networks)``
        int, inputs in :data:`mothlab.data.INPUT_NAMES` order. ``level``: an int, a rule name
        (each network at its optimal level; −1 columns for networks without one) or (n,)."""
        return input_connectivity(self.experiment, self._levels(level)).T

    def node_states(self, level: int, network: int, biases: bool = True) -> list[np.ndarray]:
        """:func:`node_states` of one network at one level (with its bias masks by default)."""
        lv = int(self._levels(level)[0])
        if not 0 <= int(network) < self.n_networks:
            raise ValueError(f"network must be in [0, {self.n_networks}), got {network!r}")
        masks = [m[int(network)] for m in self.experiment.masks(lv)]
        bs = [b[int(network)] for b in self.experiment.bias_masks(lv)] if biases else None
        return node_states(masks, bs)

    def weights_left(self, level: int, network: int) -> tuple[int, int]:
        """(weights left, weights in all) of one network at one level (biases not counted)."""
        masks = self.experiment.masks(int(self._levels(level)[0]))
        return (
            int(sum(int(m[int(network)].sum()) for m in masks)),
            int(sum(m.shape[1] * m.shape[2] for m in masks)),
        )

    # -- level names -------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """How the experiment's masks were made (``config.method``; ``"prune"`` for stores
        that predate sparse methods)."""
        return str(getattr(getattr(self.experiment, "config", None), "method", "prune"))

    def level_label(self, level: int) -> str:
        """What level ``level`` is, in a few words, the same everywhere a level is named.

        A pruning run: its sparsity, ``"85 %"``. A sparse-from-the-start run (every level at the
        same density): where the level sits in training, ``"update 3 · density 10 %"`` for a
        level that ends with SET/RigL's third topology update, ``"step 2,000 · density 10 %"``
        for the others (fixed masks, the last level, RigL after its updates stop), so no two
        levels share a label (:func:`mothlab.nets.sparse.level_plan`).
        """
        lv = int(level)
        if not 0 <= lv < len(self.sparsity):
            raise ValueError(f"level must be in [0, {len(self.sparsity)}), got {level!r}")
        if self.method == "prune":
            return _pct(self.sparsity[lv])
        from mothlab.nets.sparse import level_plan

        cfg = self.experiment.config
        p = level_plan(cfg)[lv]
        density = f"density {100 * float(cfg.density):.4g} %"
        if p["updated"]:
            return f"update {p['updates']} · {density}"
        return f"step {p['step']:,} · {density}"

    # -- what to show -------------------------------------------------------------------------
    def level_to_show(self, rule: str = "paper") -> Shown:
        """THE rule for which level and which network to show first, used by every view.

        Level: the median optimal level under ``rule`` over the networks that have one (the
        lower median, so it is a level some network has). Network: of the networks optimally
        sparse at that level, the one whose loss there is closest (in log) to their median.
        When no network has an optimal level, the level of lowest median loss and the network
        closest to that median; ``reason`` says which case applies. Returns a :class:`Shown`
        (unpacks as ``level, network``).
        """
        opt = self.optimal_level(rule)
        with np.errstate(divide="ignore", invalid="ignore"):
            logl = np.log(self.loss)
        if (opt >= 0).any():
            lv = int(np.sort(opt[opt >= 0])[((opt >= 0).sum() - 1) // 2])
            cand = np.flatnonzero(opt == lv)
            reason = (
                f"the median optimal level under the {rule!r} rule "
                f"({SELECTION_RULES[rule]}), over {int((opt >= 0).sum())} of "
                f"{self.n_networks} networks"
            )
        else:
            med = self.median[: self.levels_done]
            if not np.isfinite(med).any():
                return Shown(0, 0, "no level has a finite loss yet")
            lv = int(np.nanargmin(med))
            cand = np.flatnonzero(np.isfinite(logl[lv]))
            reason = (
                f"no network reaches the threshold {format_loss(self.threshold)} under the {rule!r} "
                "rule: showing the level of lowest median loss instead"
            )
        target = np.median(logl[lv, cand])
        net = int(cand[np.argmin(np.abs(logl[lv, cand] - target))])
        return Shown(lv, net, reason)

    def caption(self, level: int, network: int, rule: str = "paper") -> str:
        """One true sentence about one network at one level, e.g. ``"network 12 at 85 %: 1,034
        of 6,906 weights left, test loss 8.1e-4, under the threshold 1e-3 (its optimal level,
        paper's rule)"``."""
        lv, net = int(level), int(network)
        left, total = self.weights_left(lv, net)
        x = float(self.loss[lv, net])
        where = (
            "not evaluated" if not math.isfinite(x) else "under" if x < self.threshold else "over"
        )
        side = (
            ""
            if where == "not evaluated"
            else f", {where} the threshold {format_loss(self.threshold)}"
        )
        opt = int(self.optimal_level(rule)[net])
        if opt == lv:
            tail = f" (its optimal level, {rule!r} rule)"
        elif opt < 0:
            tail = f" (it has no optimal level under the {rule!r} rule)"
        else:
            tail = f" (its optimal level under the {rule!r} rule is {self.level_label(opt)})"
        return (
            f"network {net} at {self.level_label(lv)}: {left:,} of {total:,} weights left, "
            f"{self.which} loss {format_loss(x)}{side}{tail}"
        )


def sparsity_result(
    exp_or_path, threshold: float | None = None, which: str = "test"
) -> SparsityResult:
    """The :class:`SparsityResult` of an experiment (or the path of its store).

    ``threshold``: None → the experiment's own (``config.threshold``, paper 1e-3). ``which``:
    "test" (default; the paper's), "val" or "train" (the authors' code selected on training
    loss, SCIENCE.md §5 item 5: rule "sparsest" on which="train" reproduces it).
    """
    exp = load(exp_or_path)
    t = threshold_of(exp, threshold)
    tab = loss_table(exp, which)
    L = len(tab["sparsity"])
    capped = getattr(exp, "capped", None)
    capped = (
        np.zeros(L, np.int64)
        if capped is None
        else np.asarray(capped).reshape(L, -1).astype(np.int64).sum(axis=1)
    )
    for a in (tab["sparsity"], tab["loss"], tab["median"], tab["q25"], tab["q75"], capped):
        a.flags.writeable = False  # a result is shared by views and sessions: never edited
    return SparsityResult(
        experiment=exp,
        sparsity=tab["sparsity"],
        levels_done=int(tab["levels_done"]),
        threshold=t,
        which=which,
        loss=tab["loss"],
        median=tab["median"],
        q25=tab["q25"],
        q75=tab["q75"],
        capped=capped,
        n_networks=int(exp.n_networks),
        layer_sizes=tuple(int(s) for s in exp.layer_sizes),
    )


# ------------------------------------------------------------------------------ per-function API


def loss_table(exp, which: str = "test") -> dict:
    """Loss versus sparsity: ``{"sparsity" (L,), "loss" (L, n), "median", "q25", "q75", "min",
    "max" (L,), "which", "levels_done"}`` (NaN for levels not done)."""
    exp = load(exp)
    if which not in ("test", "val", "train"):
        raise ValueError(f"which must be 'test', 'val' or 'train', got {which!r}.")
    loss = np.array(getattr(exp, f"{which}_loss"), float)  # a copy: the caller may freeze it
    out = {
        "sparsity": np.array(exp.sparsity_levels, float),
        "loss": loss,
        "which": which,
        "levels_done": int(exp.levels_done),
    }
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: levels not done
        for name, fn in (("median", np.nanmedian), ("min", np.nanmin), ("max", np.nanmax)):
            out[name] = fn(loss, axis=1)
        out["q25"] = np.nanpercentile(loss, 25, axis=1)
        out["q75"] = np.nanpercentile(loss, 75, axis=1)
    return out


def optimal_counts(exp, threshold: float | None = None, rule: str = "paper") -> dict:
    """``{"sparsity" (L,), "count" (L,) networks optimally sparse at each level, "none" (networks
    without an optimal level), "optimal_level" (n,), "threshold", "rule"}``."""
    r = sparsity_result(exp, threshold)
    opt = r.optimal_level(rule)
    return {
        "sparsity": r.sparsity,
        "count": r.optimal_counts(rule),
        "none": int((opt < 0).sum()),
        "optimal_level": opt,
        "threshold": r.threshold,
        "rule": rule,
    }


def remaining_weights(exp, levels=None, threshold: float | None = None) -> dict:
    """Table 1: weights left per layer.

    ``levels``: None → each network at its optimal level (paper's rule; networks without one are
    left out); an int → all networks at that level; an array (n,) → per network.
    Returns ``{"layers" ["10→400", ...], "total" (n_layers,), "mean", "var", "min", "max"
    (n_layers,), "counts" (n_used, n_layers), "networks" (n_used,) indices}``.
    """
    exp = load(exp)
    n = exp.n_networks
    if levels is None:
        lv = optimal_levels(exp.test_loss[: exp.levels_done], threshold_of(exp, threshold))
    elif np.ndim(levels) == 0:
        lv = np.full(n, int(levels))
    else:
        lv = np.asarray(levels, int)
        if lv.shape != (n,):
            raise ValueError(f"levels must be None, an int or an array of {n} level indices.")
    used = np.flatnonzero(lv >= 0)
    sizes = exp.layer_sizes
    n_layers = len(sizes) - 1
    counts = np.zeros((len(used), n_layers), np.int64)
    for level in np.unique(lv[used]):
        rows = np.flatnonzero(lv[used] == level)
        masks = exp.masks(int(level))
        for l in range(n_layers):
            counts[rows, l] = masks[l][used[rows]].sum(axis=(1, 2))

    def stat(fn):
        return fn(counts, axis=0).astype(float) if len(used) else np.full(n_layers, np.nan)

    return {
        "layers": [f"{a}→{b}" for a, b in zip(sizes[:-1], sizes[1:])],
        "total": np.array([a * b for a, b in zip(sizes[:-1], sizes[1:])]),
        "mean": stat(np.mean),
        "var": stat(np.var),
        "min": stat(np.min),
        "max": stat(np.max),
        "counts": counts,
        "networks": used,
    }


def input_connectivity(exp, level) -> np.ndarray:
    """Connections from each input variable to hidden layer 1: (n_networks, n_inputs) int.

    ``level``: an int (all networks at that level), ``"optimal"`` (each network at its optimal
    level, paper's rule; rows of networks without one are −1) or an array (n,) of level indices.
    Input order is :data:`mothlab.data.INPUT_NAMES` (ẋ₀, ẏ₀, φ₀, θ₀, φ̇₀, θ̇₀, x_f, y_f, φ_f, θ_f).
    (:meth:`SparsityResult.input_connectivity` gives the transpose, inputs first.)
    """
    exp = load(exp)
    n = exp.n_networks
    if isinstance(level, str):
        if level != "optimal":
            raise ValueError(f"level must be an int, 'optimal' or an array; got {level!r}.")
        lv = optimal_levels(exp.test_loss[: exp.levels_done], threshold_of(exp))
    elif np.ndim(level) == 0:
        lv = np.full(n, int(level))
    else:
        lv = np.asarray(level, int)
    out = np.full((n, exp.layer_sizes[0]), -1, np.int64)
    for lvl in np.unique(lv[lv >= 0]):
        rows = np.flatnonzero(lv == lvl)
        m0 = exp.masks(int(lvl))[0]
        out[rows] = m0[rows].sum(axis=2)
    return out


def ghost_dead_nodes(masks, biases=None) -> dict:
    """Ghost (no input) and dead (no output) hidden nodes.

    masks : list of bool (n_networks, n_l, n_{l+1}) (or without the network axis)
    biases : optional list of bias masks (a node fed by its bias alone is not a ghost)

    Returns ``{"ghost": [...], "dead": [...], "removed": [...]}``, one bool array
    (n_networks, width) per hidden layer: ghost/dead as seen in the masks, and every node removed
    by iterating the removal to a fixed point (:func:`mothlab.analysis.motifs.prune_ghost_dead`),
    plus ``"n_removed"`` (n_networks,).
    """
    ms = [np.asarray(m, bool) for m in masks]
    bs = None if biases is None else [np.asarray(b, bool) for b in biases]
    ghost, dead, removed = [], [], []
    pm, _ = prune_ghost_dead(ms, bs)
    pm = [np.asarray(m, bool) for m in pm]
    for l in range(1, len(ms)):
        has_in = ms[l - 1].any(axis=-2)
        if bs is not None:
            has_in = has_in | bs[l - 1]
        ghost.append(~has_in)
        dead.append(~ms[l].any(axis=-1))
        # after the fixed point a removed node has no edge left; a live one keeps its outputs
        removed.append(~(pm[l - 1].any(axis=-2) | pm[l].any(axis=-1)))
    n_removed = sum(r.sum(axis=-1) for r in removed) if removed else 0
    return {"ghost": ghost, "dead": dead, "removed": removed, "n_removed": n_removed}


def breakdown_level(exp, threshold: float | None = None, which: str = "test") -> int:
    """:meth:`SparsityResult.breakdown_level` of an experiment."""
    return sparsity_result(exp, threshold, which).breakdown_level()
