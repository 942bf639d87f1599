"""Closed-loop studies over the networks of an experiment (issue 11, SCIENCE.md §6).

Each study flies every network of some levels of an experiment on the same flights (hover and the
flower, the same noise draws), flies the MPC and the oracle on those flights beside them, and
returns a :class:`StudyResult` of plain arrays with one figure:

- :func:`sparsity_study` — tracking error against the sparsity level, all levels, every network;
  with the loss-level breakdown (median test loss back over the threshold) and the flight-level
  one (below) side by side;
- :func:`noise_study` — against sensor noise (on the sensed state) or actuator noise (on the
  controls), for the dense, optimal and over-pruned networks;
- :func:`body_study` — against the body scale s (1.0–1.3, the authors' extrapolation) or the
  abdomen's mass (a moth after feeding), same three groups. The networks were trained on the
  S1 body; the MPC and the oracle know the changed body (they are the physics baselines).

Flight-level breakdown: the first level after the level of lowest median flight error at which the
median error is more than :data:`BREAKDOWN_FACTOR` times that lowest median, or at which half the
flights diverge (the loss-level rule of :func:`mothlab.analysis.sparsity.breakdown_level`, with
"over the threshold" replaced by "twice as bad as the best").
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from mothlab.progress import report, span

from .loop import FlightResult, fly, load_networks, make_flights
from .names import STUDIES
from .targets import Flower, Hover

BREAKDOWN_FACTOR = 2.0
NOISE_LEVELS = (0.0, 0.005, 0.01, 0.02, 0.05)
SCALES = (1.0, 1.1, 1.2, 1.3)
MASS_FACTORS = (1.0, 1.25, 1.5, 2.0)
GROUPS = ("dense", "optimal", "over-pruned")


@dataclasses.dataclass
class StudyResult:
    """Plain arrays of one study.

    x: (X,) condition values (sparsity, σ, s or mass factor), x_label; groups: G names;
    levels: (G, n) level flown by each network in each group (−1: not flown);
    rms: (G, X, n) each network's RMS tracking error (cm), averaged over the study's flights
    (targets × draws) at that condition; diverged, clipped: (G, X, n) fractions of those flights;
    mpc, oracle: (X, F) RMS error of each baseline flight at each condition (F flights);
    info: dict (experiment, breakdown levels, targets, draws, wall times, robustness summary).
    """

    name: str
    x: np.ndarray
    x_label: str
    groups: tuple
    levels: np.ndarray
    rms: np.ndarray
    diverged: np.ndarray
    clipped: np.ndarray
    mpc: np.ndarray
    oracle: np.ndarray
    info: dict

    def median(self) -> np.ndarray:
        """(G, X) median over networks of the RMS error."""
        with np.errstate(all="ignore"):
            return np.nanmedian(self.rms, axis=-1)

    def table(self) -> dict[str, list]:
        """Long-form columns for a CSV: one row per (group, condition, network) and per
        baseline flight."""
        cols = {
            k: []
            for k in (
                "study",
                "controller",
                "group",
                "x",
                "network",
                "level",
                "rms_error_cm",
                "diverged_fraction",
                "clipped_fraction",
            )
        }

        def row(**kw):
            for k in cols:
                cols[k].append(kw.get(k, ""))

        G, X, n = self.rms.shape
        for g in range(G):
            for i in range(X):
                for j in range(n):
                    if self.levels[g, j] < 0 or not np.isfinite(self.rms[g, i, j]):
                        continue
                    row(
                        study=self.name,
                        controller="net",
                        group=self.groups[g],
                        x=float(self.x[i]),
                        network=j,
                        level=i if self.name == "sparsity" else int(self.levels[g, j]),
                        rms_error_cm=float(self.rms[g, i, j]),
                        diverged_fraction=float(self.diverged[g, i, j]),
                        clipped_fraction=float(self.clipped[g, i, j]),
                    )
        for name, arr in (("mpc", self.mpc), ("oracle", self.oracle)):
            for i in range(X):
                for f in range(arr.shape[1]):
                    row(
                        study=self.name,
                        controller=name,
                        group=name,
                        x=float(self.x[i]),
                        network=f"flight {f}",
                        rms_error_cm=float(arr[i, f]),
                    )
        return cols

    def to_csv(self, path) -> None:
        cols = self.table()
        keys = list(cols)
        with open(path, "w") as fh:
            fh.write(",".join(keys) + "\n")
            for i in range(len(cols[keys[0]])):
                fh.write(",".join(_fmt(cols[k][i]) for k in keys) + "\n")

    def figure(self):
        """The study's matplotlib figure: the distribution over networks per condition and
        group (median and quartiles, every network as a dot), MPC and oracle beside it."""
        from .figures import study_figure

        return study_figure(self)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# ------------------------------------------------------------------------------ helpers
def _experiment(exp):
    if isinstance(exp, str) or hasattr(exp, "__fspath__"):
        from mothlab.nets import load_experiment

        return load_experiment(exp)
    return exp


def loss_breakdown_level(exp) -> int:
    """The loss-level breakdown (−1 if none), from the analysis layer's one rule."""
    import mothlab.analysis as A

    if hasattr(A, "sparsity_result"):
        return int(A.sparsity_result(exp).breakdown_level())
    from mothlab.analysis.sparsity import breakdown_level

    return int(breakdown_level(exp))


def flight_breakdown_level(median_rms, diverged_fraction, factor: float = BREAKDOWN_FACTOR) -> int:
    """First level after the best at which the median flight error exceeds ``factor`` × the best
    median, or half the flights diverge; −1 if none. Inputs: (L,) per level."""
    med = np.asarray(median_rms, float)
    if not np.isfinite(med).any():
        return -1
    best = int(np.nanargmin(med))
    bad = ~(med[best + 1 :] <= factor * med[best]) | (
        np.asarray(diverged_fraction)[best + 1 :] >= 0.5
    )
    idx = np.flatnonzero(bad)
    return int(best + 1 + idx[0]) if idx.size else -1


def group_levels(exp) -> tuple[np.ndarray, dict]:
    """(3, n) levels of the dense, optimal and over-pruned groups, and notes on how they were
    chosen.

    dense: level 0. optimal: each network's optimally sparse level (the experiment's rule);
    when fewer than 5 networks have one, each network's own lowest-test-loss level instead (said
    in the notes). over-pruned: two levels past the loss-level breakdown (the sparsest level done
    when the loss never breaks down)."""
    n = exp.n_networks
    done = exp.levels_done
    opt = np.asarray(exp.optimal_level())
    notes = {}
    if (opt >= 0).sum() >= 5:
        optimal = np.where(opt >= 0, opt, -1)
        notes["optimal"] = f"{int((opt >= 0).sum())} of {n} networks have an optimal level"
    else:
        loss = np.asarray(exp.test_loss)[:done]
        optimal = np.nanargmin(np.where(np.isfinite(loss), loss, np.inf), axis=0)
        notes["optimal"] = (
            f"only {int((opt >= 0).sum())} of {n} networks are under the loss "
            "threshold at any level, so each network's own lowest-test-loss "
            "level is used"
        )
    bd = loss_breakdown_level(exp)
    over = done - 1 if bd < 0 else min(bd + 2, done - 1)
    notes["over-pruned"] = (
        f"level {over} ({100 * exp.sparsity_levels[over]:.0f} %), "
        f"{'two past the loss breakdown' if bd >= 0 else 'sparsest done'}"
    )
    notes["loss_breakdown_level"] = bd
    return np.stack([np.zeros(n, int), optimal.astype(int), np.full(n, over)]), notes


def _targets(amplitude):
    return [Hover(), Flower(amplitude)]


def _per_condition(res: FlightResult, key, values):
    """Average each network's flights per condition: rms, diverged, clipped → (M, X)."""
    lab = np.asarray(res.flights.labels[key], float)
    rms, div, clip = res.rms_error(), res.diverged, res.clipped_fraction()
    out = [np.empty((res.state.shape[0], len(values))) for _ in range(3)]
    for i, v in enumerate(values):
        sel = np.isclose(lab, v)
        out[0][:, i] = rms[:, sel].mean(1)
        out[1][:, i] = div[:, sel].mean(1)
        out[2][:, i] = clip[:, sel].mean(1)
    return out


def _baseline_per_condition(res: FlightResult, key, values):
    lab = np.asarray(res.flights.labels[key], float)
    rms = res.rms_error()[0]
    per = [rms[np.isclose(lab, v)] for v in values]
    width = max(len(p) for p in per)
    return np.array([np.pad(p, (0, width - len(p)), constant_values=np.nan) for p in per])


def _run(
    exp, name, x, x_label, key, pairs_by_group, flights, *, mpc_samples, progress, cancel, notes
):
    t0 = time.perf_counter()
    groups = tuple(pairs_by_group)
    pairs = [p for g in groups for p in pairs_by_group[g] if p[0] >= 0]
    nets = load_networks(exp, pairs)
    spans = (nets.spans_in, nets.spans_out)
    report(progress, 0.0, f"{name} study: {nets.n} networks × {flights.n} flights")
    res = fly(nets, flights, progress=span(progress, 0.0, 0.6), cancel=cancel)
    t_net = time.perf_counter() - t0
    res_mpc = fly(
        "mpc",
        flights,
        spans=spans,
        mpc_samples=mpc_samples,
        progress=span(progress, 0.6, 0.92),
        cancel=cancel,
    )
    res_or = fly("oracle", flights, spans=spans, progress=span(progress, 0.92, 1.0), cancel=cancel)
    rms_m, div_m, clip_m = _per_condition(res, key, x)
    n = exp.n_networks
    G, X = len(groups), len(x)
    rms = np.full((G, X, n), np.nan)
    div, clip = np.full_like(rms, np.nan), np.full_like(rms, np.nan)
    levels = np.full((G, n), -1)
    m = 0
    for g, gname in enumerate(groups):
        for lv, j in pairs_by_group[gname]:
            if lv < 0:
                continue
            levels[g, j] = lv
            rms[g, :, j], div[g, :, j], clip[g, :, j] = rms_m[m], div_m[m], clip_m[m]
            m += 1
    info = dict(notes)
    info.update(
        experiment=str(exp.path),
        targets=[t for t in dict.fromkeys(flights.labels["target"].tolist())],
        n_flights=int(flights.n),
        duration_s=float(flights.t[-1]),
        wall_s=round(time.perf_counter() - t0, 2),
        network_wall_s=round(t_net, 2),
        networks_flown=int(nets.n),
        mpc_samples=int(mpc_samples),
    )
    result = StudyResult(
        name,
        np.asarray(x, float),
        x_label,
        groups,
        levels,
        rms,
        div,
        clip,
        _baseline_per_condition(res_mpc, key, x),
        _baseline_per_condition(res_or, key, x),
        info,
    )
    report(progress, 1.0, f"{name} study done in {info['wall_s']:.0f} s")
    return result


def _check_values(name, values, lo, hi):
    vals = [float(v) for v in values]
    if not vals or any(not math.isfinite(v) or v < lo or v > hi for v in vals):
        raise ValueError(f"{name} values must be finite and in [{lo:g}, {hi:g}]; got {values!r}.")
    return vals


# ------------------------------------------------------------------------------ studies
def sparsity_study(
    exp,
    *,
    duration: float = 1.0,
    flower_amplitude: float = 2.0,
    draws: int = 1,
    sensor_noise: float = 0.0,
    mpc_samples: int = 512,
    seed: int = 0,
    progress=None,
    cancel=None,
) -> StudyResult:
    """Tracking error of every network at every finished level (hover and flower)."""
    exp = _experiment(exp)
    L = exp.levels_done
    flights = make_flights(
        _targets(flower_amplitude),
        duration=duration,
        draws=draws,
        sensor_noise=[sensor_noise],
        seed=seed,
    )
    # one "group" per level while flying (each level's networks), then levels become the x axis
    pairs = {i: [(i, j) for j in range(exp.n_networks)] for i in range(L)}
    r = _run(
        exp,
        "sparsity",
        [1.0],
        "sparsity",
        "scale",
        pairs,
        flights,
        mpc_samples=mpc_samples,
        progress=progress,
        cancel=cancel,
        notes={},
    )
    rms, div, clip = (a[:, 0][None] for a in (r.rms, r.diverged, r.clipped))
    x = np.asarray(exp.sparsity_levels[:L], float)
    med = np.nanmedian(rms[0], axis=-1)
    info = dict(r.info)
    info["loss_breakdown_level"] = loss_breakdown_level(exp)
    info["flight_breakdown_level"] = flight_breakdown_level(med, np.nanmean(div[0], axis=-1))
    for key in ("loss", "flight"):
        lv = info[f"{key}_breakdown_level"]
        info[f"{key}_breakdown_sparsity"] = None if lv < 0 else float(x[lv])
    info["median_test_loss"] = np.nanmedian(np.asarray(exp.test_loss)[:L], axis=1).tolist()
    return StudyResult(
        "sparsity",
        x,
        "sparsity",
        ("networks",),
        np.zeros((1, exp.n_networks), int),
        rms,
        div,
        clip,
        np.repeat(r.mpc, L, 0),
        np.repeat(r.oracle, L, 0),
        info,
    )


def noise_study(
    exp,
    kind: str = "sensor",
    *,
    levels=NOISE_LEVELS,
    duration: float = 1.0,
    flower_amplitude: float = 2.0,
    draws: int = 2,
    mpc_samples: int = 512,
    seed: int = 0,
    progress=None,
    cancel=None,
) -> StudyResult:
    """Tracking error against sensor (``kind="sensor"``) or actuator noise, in fractions of each
    quantity's range in the training data, for the dense, optimal and over-pruned networks."""
    if kind not in ("sensor", "actuator"):
        raise ValueError(f"noise kind must be 'sensor' or 'actuator'; got {kind!r}.")
    exp = _experiment(exp)
    vals = _check_values(f"{kind} noise", levels, 0.0, 1.0)
    lv, notes = group_levels(exp)
    kw = {"sensor_noise": vals} if kind == "sensor" else {"actuator_noise": vals}
    flights = make_flights(
        _targets(flower_amplitude), duration=duration, draws=draws, seed=seed, **kw
    )
    pairs = {g: [(int(lv[i, j]), j) for j in range(exp.n_networks)] for i, g in enumerate(GROUPS)}
    return _run(
        exp,
        f"{kind}-noise",
        vals,
        f"{kind} noise σ (fraction of the training range)",
        f"{kind}_noise",
        pairs,
        flights,
        mpc_samples=mpc_samples,
        progress=progress,
        cancel=cancel,
        notes=notes,
    )


def body_study(
    exp,
    kind: str = "scale",
    *,
    values=None,
    duration: float = 1.0,
    flower_amplitude: float = 2.0,
    mpc_samples: int = 512,
    seed: int = 0,
    progress=None,
    cancel=None,
) -> StudyResult:
    """Tracking error against the body scale s (``kind="scale"``) or the abdomen mass factor
    (``kind="mass"``) for the dense, optimal and over-pruned networks."""
    if kind not in ("scale", "mass"):
        raise ValueError(f"body study kind must be 'scale' or 'mass'; got {kind!r}.")
    exp = _experiment(exp)
    if kind == "scale":
        vals = _check_values("scale", SCALES if values is None else values, 0.5, 2.0)
        bodies, key, label = [(v, 1.0) for v in vals], "scale", "body scale s"
    else:
        vals = _check_values(
            "abdomen mass factor", MASS_FACTORS if values is None else values, 0.25, 4.0
        )
        bodies, key, label = (
            [(1.0, v) for v in vals],
            "abdomen_mass_factor",
            "abdomen mass factor",
        )
    lv, notes = group_levels(exp)
    flights = make_flights(_targets(flower_amplitude), duration=duration, bodies=bodies, seed=seed)
    pairs = {g: [(int(lv[i, j]), j) for j in range(exp.n_networks)] for i, g in enumerate(GROUPS)}
    return _run(
        exp,
        kind,
        vals,
        label,
        key,
        pairs,
        flights,
        mpc_samples=mpc_samples,
        progress=progress,
        cancel=cancel,
        notes=notes,
    )


def run_study(exp, name: str, **kw) -> StudyResult:
    """A study by its name in :data:`STUDIES`."""
    if name == "sparsity":
        return sparsity_study(exp, **kw)
    if name in ("sensor-noise", "actuator-noise"):
        return noise_study(exp, name.split("-")[0], **kw)
    if name in ("scale", "mass"):
        return body_study(exp, name, **kw)
    raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}.")


def robustness(result: StudyResult) -> dict:
    """How much each group's median error grows from the first to the last condition
    (ratio of medians over networks), and which group degrades least: the study's answer to
    "does sparsity help or hurt robustness"."""
    med = result.median()
    out = {}
    for g, name in enumerate(result.groups):
        a, b = med[g, 0], med[g, -1]
        out[name] = {
            "median_first_cm": float(a),
            "median_last_cm": float(b),
            "growth": float(b / a) if a > 0 else float("nan"),
        }
    return out
