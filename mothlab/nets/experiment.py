"""The Monte Carlo experiment of the first paper: train, prune, retrain, level by level.

``run_experiment(config, out)`` trains ``config.n_networks`` networks at once through the sparsity
schedule and writes each finished level to a zarr store at ``out`` (kind ``"experiment"``);
``load_experiment(out)`` reads it back (also while it runs, or after a crash: the finished levels
form a readable prefix).

Store layout (all arrays have the network axis; ``n_padded >= n_networks`` rows, see sharding)::

    header (attrs "mothlab"): config, layer_sizes, sparsity_levels, seeds, dataset, scalers,
        as_published, levels_done, timings, device
    test_loss, val_loss, train_loss : (L, n_padded) float32, NaN until the level is done
    steps : (L, n_padded) int32            batches trained at each level
    capped : (L, n_padded) bool            the network stopped at its step cap, not by its stop
                                           rule (absent in stores made before it was added)
    levels/<i>/w<l>, b<l>               raw weights/biases after level i (float32)
    levels/<i>/mw<l>, mb<l>             masks (bool)
    levels/<i>/hist_val, hist_train     (n_chunks, n_padded) mean loss per compiled chunk
    levels/<i>/opt/<j>                  optimizer state (kept for the latest level only: resume;
                                        dropped when the experiment is complete)

The runner is three public steps, composed by :func:`run_experiment`:

- :func:`open_run` — open-or-resume: validate the config, create the store or check that an
  existing one was made by the same config, load the data, restore the state of the last
  finished level;
- :func:`train_level` — one level: the :class:`~mothlab.nets.pruning.Topology` chosen by
  ``config.method`` sets the masks (``prune``: magnitude pruning to the level's sparsity), then
  compiled chunks train every network until its stop rule (or step cap); evaluates the losses;
- :func:`write_level` — write the level's arrays, then in one atomic header write
  (:func:`mothlab.store.seal_level`) record their checksums, raise ``levels_done`` and mark the
  previous level's optimizer state for deletion, then delete it. A kill between any two of these
  leaves a store that :func:`open_run` resumes from the last level it records as done, and whose
  pending deletion the next writable open finishes (so nothing is orphaned).

Since every network's batches come from its own keys and the computation is deterministic, a
resumed run ends with the same numbers as an uninterrupted one (tested, bit for bit, on one
device, also with a learning-rate schedule: its step count is part of the stored optimizer
state).

Scale-out: the network axis is sharded over ``jax.local_devices()`` with a 1-D
``NamedSharding`` (mesh axis ``"net"``); ``n_networks`` is padded to a multiple of the device
count with extra networks (ids ``n_networks, ...``) that are trained and discarded.

Several hosts: networks never interact (unless ``as_published``), so the simplest correct
multi-host run gives each host its own share: on every host call
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` (so the hosts agree
on devices and can be driven by one launcher), then run ``run_experiment`` on that host's local
devices with its own ``out`` and a config whose ``seed`` differs per host (network ``i`` of host
``h`` is then the network ``(seed_h, i)``). Each store is a complete experiment; analyses accept
several. This writer gathers every array to the local process and is tested single-host only.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mothlab import store as st
from mothlab.progress import Progress, check_cancel, report, span

from .config import N_INPUTS, N_OUTPUTS, ExperimentConfig
from .pruning import Topology, make_topology
from .training import (
    TrainSettings,
    dense_grads,
    evaluate,
    init_state,
    level_state,
    network_keys,
    restart_schedule,
    train_chunk,
)

__all__ = [
    "run_experiment",
    "open_run",
    "train_level",
    "write_level",
    "ExperimentRun",
    "LevelResult",
    "Experiment",
    "load_experiment",
    "optimal_level_from",
    "PUBLISHED_DEFECTS",
    "KIND",
]

KIND = "experiment"

#: What ``as_published=True`` reproduces on purpose (SCIENCE.md §5, defects 1–6).
PUBLISHED_DEFECTS = (
    "1: bias masks thresholded with the weight cutoff (from the first pruning step on)",
    "2: new masks from raw weights, not nested (pruned weights may return)",
    "3: optimizer moments not reset at pruning",
    "4: test loss of a level computed on one data slice indexed by the level",
    "5: optimal level = last level under threshold on training loss",
    "6: early stopping joint over all networks",
)

#: Share of the progress bar given to generating a dataset (when one is generated).
_DATA_SHARE = 0.1


# ---------------------------------------------------------------------------- data
def _check_features(x, y, config: ExperimentConfig, where: str):
    ls = config.layer_sizes
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != ls[0] or y.shape[1] != ls[-1]:
        raise ValueError(
            f"dataset {where} has {x.shape[-1] if x.ndim else '?'} inputs and "
            f"{y.shape[-1] if y.ndim else '?'} outputs, but the networks need {ls[0]} inputs and "
            f"{ls[-1]} outputs (layer sizes {ls}); use a mothlab flight dataset "
            f"({N_INPUTS} inputs, {N_OUTPUTS} outputs)."
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"dataset {where}: {x.shape[0]} input rows but {y.shape[0]} output rows.")
    for name, a in (("inputs", x), ("outputs", y)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"dataset {where} {name} contain NaN or infinity; regenerate it.")


def _dataset_progress(progress, what: str):
    """The dataset generator's :class:`Progress` events, marked as level -1 (before level 0) for
    the runner's listeners, with ``what`` as the message where the generator gave none."""
    if progress is None:
        return None

    def fn(ev: Progress):
        progress(Progress(ev.fraction, ev.message or what, dict(ev.payload, level=-1)))

    return fn


def _load_data(config: ExperimentConfig, out: Path, data, progress, cancel=None):
    """Scaled splits ``{"train": (X, Y), "val": ..., "test": ...}``, the dataset's record and
    the scalers."""
    if data is not None:
        splits = {}
        for k in ("train", "val", "test"):
            if k not in data:
                raise ValueError(
                    f"data must map 'train', 'val' and 'test' to (X, Y); missing {k!r}."
                )
            x, y = (np.asarray(a, np.float32) for a in data[k])
            _check_features(x, y, config, f"split {k!r}")
            splits[k] = (x, y)
        return (
            splits,
            {
                "source": "in-memory arrays (already scaled)",
                "n": int(sum(len(v[0]) for v in splits.values())),
            },
            None,
        )

    from mothlab.data import INPUT_NAMES, OUTPUT_NAMES, generate_dataset, open_dataset

    if config.dataset:
        path = Path(config.dataset)
        ds = open_dataset(path)
    else:
        path = out.parent / "datasets" / f"moth-n{config.n_samples}-seed{config.data_seed}.zarr"
        # a cancel during generation raises Cancelled; the dataset resumes later
        ds = generate_dataset(
            path,
            int(config.n_samples),
            seed=int(config.data_seed),
            progress=_dataset_progress(
                span(progress, 0.0, _DATA_SHARE), f"generating dataset {path.name}"
            ),
            cancel=cancel,
        )
    hdr = ds.header
    for key, want in (("input_names", INPUT_NAMES), ("output_names", OUTPUT_NAMES)):
        got = hdr.get(key)
        if got is not None and tuple(got) != tuple(want):
            raise ValueError(
                f"dataset {path} has {key} {got}, expected {list(want)}; "
                "regenerate it with this mothlab version."
            )
    idx = ds.splits(seed=int(config.data_seed))
    xs, ys = ds.scalers(seed=int(config.data_seed))
    splits = {}
    for k in ("train", "val", "test"):
        x, y = ds.features(idx[k])
        _check_features(x, y, config, f"{path} split {k!r}")
        splits[k] = (xs.transform(x).astype(np.float32), ys.transform(y).astype(np.float32))
    record = {
        "source": "store",
        "path": str(path.resolve()),
        "n": int(ds.n),
        "seed": hdr.get("seed"),
        "split_seed": int(config.data_seed),
        "split_sizes": {k: int(len(v)) for k, v in idx.items()},
        "header": {
            k: v
            for k, v in hdr.items()
            if k
            in (
                "kind",
                "created",
                "mothlab_version",
                "seed",
                "n",
                "precise",
                "ranges",
                "params",
                "accuracy",
                "integrator",
                "complete",
            )
        },
    }
    return splits, record, {"x": xs.to_dict(), "y": ys.to_dict()}


# ---------------------------------------------------------------------------- store helpers
def _write_array(grp, name, a, chunks=None):
    a = np.asarray(a)
    z = grp.create_array(
        name, shape=a.shape, dtype=a.dtype, chunks=chunks or a.shape, overwrite=True
    )
    z[...] = a


def _read_state(g, i, template):
    """Restore params/masks/opt of level ``i`` with the tree structure of ``template``."""
    lv = g[f"levels/{i}"]
    n_layers = len(template["params"]["w"])
    params = {
        "w": [jnp.asarray(lv[f"w{l}"][...]) for l in range(n_layers)],
        "b": [jnp.asarray(lv[f"b{l}"][...]) for l in range(n_layers)],
    }
    masks = {
        "w": [jnp.asarray(lv[f"mw{l}"][...]) for l in range(n_layers)],
        "b": [jnp.asarray(lv[f"mb{l}"][...]) for l in range(n_layers)],
    }
    leaves, tree = jax.tree.flatten(template["opt"])
    if "opt" not in lv or len(list(lv["opt"].keys())) != len(leaves):
        raise ValueError(
            f"level {i} of the experiment has no optimizer state to resume from "
            "(or one of an older layout); rerun with resume=False (CLI: "
            "--overwrite)."
        )
    opt = jax.tree.unflatten(
        tree, [jnp.asarray(lv["opt"][str(j)][...]).astype(t.dtype) for j, t in enumerate(leaves)]
    )
    return {"params": params, "masks": masks, "opt": opt}


def _drop_opt(group, i: int) -> None:
    name = f"levels/{i}/opt"
    if name in group:
        st.delete_path(group, name)


def _device_record():
    devs = jax.local_devices()
    return {
        "platform": devs[0].platform,
        "n_devices": len(devs),
        "kind": getattr(devs[0], "device_kind", devs[0].platform),
        "process_count": jax.process_count(),
    }


# ---------------------------------------------------------------------------- the three steps
@dataclasses.dataclass
class ExperimentRun:
    """An experiment store open for training (from :func:`open_run`).

    ``state`` is the ensemble state (params, masks, opt; leading network axis ``n_padded``)
    after ``levels_done`` levels; ``topology`` decides each level's masks; the data lives on the
    devices (``dev_data``: train X, Y, val X, Y) and on the host (``splits``)."""

    config: ExperimentConfig
    out: Path
    group: Any
    header: dict
    topology: Topology
    settings: TrainSettings
    n_networks: int
    n_padded: int
    levels_done: int
    complete: bool
    splits: dict | None = None
    keys: Any = None
    shard: Any = None
    dev_data: Any = None
    state: dict | None = None
    timings: list = dataclasses.field(default_factory=list)
    progress_lo: float = 0.0

    @property
    def n_levels(self) -> int:
        return int(self.topology.n_levels)

    @property
    def step_budget(self) -> list[int]:
        """Step cap of every level (batches per network): the weights of the progress
        fraction."""
        return [int(self.level_settings(j).max_steps) for j in range(self.n_levels)]

    def progress_at(self, i: int, level_frac: float) -> float:
        """Progress fraction after ``level_frac`` of level ``i``'s step cap: proportional to
        the step budget done (the levels before ``i`` count whole), so that fraction / elapsed
        gives an honest ETA once the dense level, the longest, is done."""
        budget = self.step_budget
        done = sum(budget[:i]) + min(max(level_frac, 0.0), 1.0) * budget[i]
        lo = self.progress_lo
        return lo + (1.0 - lo) * done / max(1, sum(budget))

    def level_settings(self, i: int) -> TrainSettings:
        s = TrainSettings.for_level(self.config, i, self.n_levels)
        # a topology may fix a level's step limits (sparse methods: update_every batches)
        adjust = getattr(self.topology, "level_settings", None)
        return adjust(s, i) if adjust is not None else s


@dataclasses.dataclass
class LevelResult:
    """One trained level (from :func:`train_level`): the state, per-chunk mean losses
    ``hist_val``/``hist_train`` (n_chunks, n_padded), batches ``steps`` (n_padded,), ``capped``
    (n_padded,) bool, losses ``test``/``val``/``train`` (n_padded,) and ``seconds``."""

    level: int
    state: dict
    hist_val: np.ndarray
    hist_train: np.ndarray
    steps: np.ndarray
    capped: np.ndarray
    test: np.ndarray
    val: np.ndarray
    train: np.ndarray
    seconds: float


def open_run(
    config: ExperimentConfig,
    out,
    *,
    resume: bool = True,
    overwrite: bool = False,
    data=None,
    progress=None,
    cancel=None,
) -> ExperimentRun:
    """Open-or-resume the experiment store at ``out`` for ``config`` (see :func:`run_experiment`
    for the arguments). A complete store comes back with ``complete=True`` and no data loaded."""
    if not isinstance(config, ExperimentConfig):
        raise ValueError(
            "config must be an ExperimentConfig (e.g. ExperimentConfig.preset('tiny'))."
        )
    config.validate()
    out = Path(out)
    cfg = config.to_dict()
    n = int(config.n_networks)
    devices = jax.local_devices()
    n_pad = int(math.ceil(n / len(devices)) * len(devices))
    sizes = config.layer_sizes
    settings = TrainSettings.from_config(config)
    topology = make_topology(config, settings)
    L = int(topology.n_levels)
    report(progress, 0.0, f"opening {out.name}", level=-1, n_levels=L)

    group = header = None
    if out.exists() and resume and not overwrite:
        group, header = st.open_store(out, KIND)
        old = header.get("config", {})
        # fields added to the config since the store was made count as their defaults
        defaults = ExperimentConfig().to_dict()
        diff = sorted(k for k in set(old) | set(cfg) if old.get(k, defaults.get(k)) != cfg.get(k))
        if diff:
            raise ValueError(
                f"{out} holds an experiment with a different config (fields {diff});"
                " resume it with the same config, or choose another --out, or "
                "overwrite it."
            )
        if header.get("n_padded") != n_pad:
            raise ValueError(
                f"{out} was run on {header.get('device', {}).get('n_devices')} "
                f"devices (padded to {header.get('n_padded')} networks); resume it "
                f"with a device count that pads {n} networks the same way."
            )
        if st.is_complete(group):
            return ExperimentRun(
                config,
                out,
                group,
                header,
                topology,
                settings,
                n,
                n_pad,
                int(header.get("levels_done", L)),
                True,
            )

    generating = data is None and not config.dataset
    splits, data_record, scalers = _load_data(config, out, data, progress, cancel)
    if data_record.get("source") == "store" and group is not None:
        if header.get("dataset", {}).get("path") != data_record["path"]:
            raise ValueError(
                f"{out} was trained on {header['dataset'].get('path')}; resume with that dataset."
            )

    if group is None:
        levels = [float(topology.label(i)) for i in range(L)]
        header = {
            "config": cfg,
            "layer_sizes": sizes,
            "sparsity_levels": levels,
            "method": str(config.method),
            "n_networks": n,
            "n_padded": n_pad,
            "seeds": {
                "experiment": int(config.seed),
                "data": int(config.data_seed),
                "network_key": "jax.random.fold_in(PRNGKey(seed), i) for network i",
            },
            "dataset": data_record,
            "scalers": scalers,
            "as_published": bool(config.as_published),
            "published_defects": list(PUBLISHED_DEFECTS) if config.as_published else [],
            "counting_rule": "layer keeps n - floor(s*n + 1/2) weights",
            "levels_done": 0,
            "timings": [],
            "device": _device_record(),
        }
        group = st.create_store(out, KIND, header, overwrite=overwrite)
        for name in ("test_loss", "val_loss", "train_loss"):
            group.create_array(name, shape=(L, n_pad), dtype="float32", fill_value=np.nan)
        group.create_array("steps", shape=(L, n_pad), dtype="int32", fill_value=0)
        group.create_array("capped", shape=(L, n_pad), dtype="bool", fill_value=False)
        header = st.read_header(group)

    done = int(header.get("levels_done", 0))
    # clean-up a kill may have left: optimizer states of levels before the last finished one
    for i in range(max(0, done - 1)):
        _drop_opt(group, i)

    mesh = jax.sharding.Mesh(np.array(devices), ("net",))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("net"))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    keys = jax.device_put(network_keys(int(config.seed), range(n_pad)), shard)
    template = init_state(keys, sizes, settings, config.init)
    state = (
        template
        if done == 0
        else (template if done >= L else _read_state(group, done - 1, template))
    )
    state = jax.device_put(state, shard)
    dev_data = jax.device_put(
        (splits["train"][0], splits["train"][1], splits["val"][0], splits["val"][1]), repl
    )
    return ExperimentRun(
        config,
        out,
        group,
        header,
        topology,
        settings,
        n,
        n_pad,
        done,
        False,
        splits=splits,
        keys=keys,
        shard=shard,
        dev_data=dev_data,
        state=state,
        timings=list(header.get("timings", [])),
        progress_lo=_DATA_SHARE if generating else 0.0,
    )


def _eta(run: ExperimentRun, i: int, level_network_steps: int) -> float | None:
    """Seconds left, from the measured seconds per network-step of the finished levels and the
    mean network-steps of the finished pruned levels (or the step cap while none is finished);
    None until a level has finished (no honest estimate before)."""
    t = run.timings
    if not t:
        return None
    secs = sum(x["seconds"] for x in t)
    steps = sum(max(1, x["network_steps"]) for x in t)
    rate = secs / steps
    later = [x["network_steps"] for x in t if x["level"] > 0]
    per_level = (
        float(np.mean(later)) if later else run.n_padded * float(run.config.max_steps_per_level)
    )
    cur = max(0.0, per_level - level_network_steps) if i > 0 else 0.0
    return rate * (cur + max(0, run.n_levels - i - 1) * per_level)


def _nanmean0(a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=0)


def train_level(run: ExperimentRun, i: int, *, progress=None, cancel=None) -> LevelResult:
    """Train level ``i`` of ``run``: the topology sets the masks, then every network trains
    until its stop rule or its step cap; returns the level's :class:`LevelResult` (nothing is
    written; see :func:`write_level`). Raises :class:`~mothlab.progress.Cancelled` when
    ``cancel()`` turns True between chunks (the store keeps its finished levels).

    Progress events (one before compiling, then one per chunk) carry the payload ``level``,
    ``n_levels``, ``sparsity``, ``step`` (most batches any network has done), ``losses`` and
    ``train_losses`` ((n_networks,) mean val/train loss of the last chunk, NaN once stopped),
    ``stopped`` ((n_networks,) bool), ``capped`` (networks at their step cap so far),
    ``throughput`` (network-steps per second) and ``eta_s`` (None before a level has finished).
    """
    cfg = run.config
    n, L = run.n_networks, run.n_levels
    t0 = time.perf_counter()
    sparsity = float(run.topology.label(i))
    lset = run.level_settings(i)

    def frac(level_frac):
        return run.progress_at(i, level_frac)

    tkeys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, 2), i))(run.keys)
    state = run.topology.before_level(run.state, i, tkeys)
    if cfg.lr_restart == "per_level":
        state = dict(state, opt=restart_schedule(state["opt"]))
    lst = jax.device_put(level_state(state, run.keys, i, lset), run.shard)
    report(
        progress,
        frac(0.0),
        f"level {i + 1}/{L} (sparsity {sparsity:.0%}): compiling",
        level=i,
        n_levels=L,
        sparsity=sparsity,
        step=0,
        losses=None,
        train_losses=None,
        stopped=np.zeros(n, bool),
        capped=0,
        throughput=0.0,
        eta_s=_eta(run, i, 0),
    )
    hv, ht = [], []
    chunk = int(cfg.chunk_steps)
    n_chunks = 0
    while True:
        check_cancel(
            cancel,
            f"{run.levels_done} of {L} levels are stored in {run.out}; run the "
            "same command again to resume",
        )
        tc = time.perf_counter()
        lst, (tl, vl) = train_chunk(lst, run.dev_data, chunk, lset)
        n_chunks += 1
        vl, tl = np.asarray(vl), np.asarray(tl)
        stopped = np.asarray(lst["stopped"])
        steps = np.asarray(lst["step"])
        capped = np.asarray(lst["capped"])
        dt = time.perf_counter() - tc
        hv.append(_nanmean0(vl))
        ht.append(_nanmean0(tl))
        lkey, lstep = lst["lkey"], lst["step"]
        new = run.topology.during_level(
            {"params": lst["params"], "masks": lst["masks"], "opt": lst["opt"]},
            n_chunks * chunk,
            lambda s, lkey=lkey, lstep=lstep: dense_grads(
                s["params"], s["masks"], lkey, lstep, run.dev_data, lset
            ),
        )
        if new is not None:
            lst = dict(lst, params=new["params"], masks=new["masks"], opt=new["opt"])
        done_frac = float(np.mean(np.minimum(steps[:n], lset.max_steps)) / max(1, lset.max_steps))
        level_frac = 1.0 if stopped.all() else min(done_frac, 0.999)
        n_stop, n_cap = int(stopped[:n].sum()), int(capped[:n].sum())
        fin = vl[:, :n][np.isfinite(vl[:, :n])]
        med = float(np.median(hv[-1][:n][np.isfinite(hv[-1][:n])])) if fin.size else math.nan
        eta = _eta(run, i, int(steps.sum()))
        report(
            progress,
            frac(level_frac),
            f"level {i + 1}/{L} (sparsity {sparsity:.0%}): step {int(steps.max())}, median val "
            f"{med:.2e}, {n_stop}/{n} stopped, {n_cap} at the step cap"
            + (f", ETA {eta / 60:.1f} min" if eta is not None else ""),
            level=i,
            n_levels=L,
            sparsity=sparsity,
            step=int(steps.max()),
            losses=hv[-1][:n],
            train_losses=ht[-1][:n],
            stopped=stopped[:n],
            capped=n_cap,
            throughput=float(np.isfinite(vl).sum() / dt) if dt > 0 else 0.0,
            eta_s=eta,
        )
        if stopped.all():
            break
    state = {"params": lst["params"], "masks": lst["masks"], "opt": lst["opt"]}
    xte, yte = run.splits["test"]
    act, eb = cfg.activation, int(cfg.eval_batch)
    if cfg.as_published:
        # defect 4: one slice of the test set, indexed by the level
        b = min(int(cfg.batch_size), len(xte))
        off = (i * b) % max(1, len(xte) - b + 1)
        test = evaluate(
            state["params"], state["masks"], xte[off : off + b], yte[off : off + b], act, eb
        )
    else:
        test = evaluate(state["params"], state["masks"], xte, yte, act, eb)
    val = evaluate(state["params"], state["masks"], *run.splits["val"], act, eb)
    k = int(cfg.train_eval_samples)
    train = evaluate(
        state["params"],
        state["masks"],
        run.splits["train"][0][:k],
        run.splits["train"][1][:k],
        act,
        eb,
    )
    return LevelResult(
        i,
        state,
        np.stack(hv),
        np.stack(ht),
        steps,
        capped,
        test,
        val,
        train,
        time.perf_counter() - t0,
    )


def write_level(run: ExperimentRun, res: LevelResult) -> None:
    """Store level ``res.level``: its arrays first, then ``levels_done`` in the header, then the
    clean-up (the previous level's optimizer state). ``run`` moves on to the next level."""
    g, i = run.group, res.level
    lv = g.require_group(f"levels/{i}")
    p, m = res.state["params"], res.state["masks"]
    for l in range(len(p["w"])):
        for name, arr in (
            (f"w{l}", p["w"][l]),
            (f"b{l}", p["b"][l]),
            (f"mw{l}", m["w"][l]),
            (f"mb{l}", m["b"][l]),
        ):
            a = np.asarray(arr)
            _write_array(lv, name, a, chunks=(min(a.shape[0], 64),) + a.shape[1:])
    _write_array(lv, "hist_val", res.hist_val.astype(np.float32))
    _write_array(lv, "hist_train", res.hist_train.astype(np.float32))
    opt = lv.require_group("opt")
    for j, leaf in enumerate(jax.tree.leaves(res.state["opt"])):
        _write_array(opt, str(j), leaf)
    g["test_loss"][i] = res.test.astype(np.float32)
    g["val_loss"][i] = res.val.astype(np.float32)
    g["train_loss"][i] = res.train.astype(np.float32)
    g["steps"][i] = res.steps.astype(np.int32)
    if "capped" in g:
        g["capped"][i] = res.capped.astype(bool)
    run.timings.append(
        {
            "level": i,
            "seconds": round(res.seconds, 3),
            "network_steps": int(res.steps.sum()),
            "capped": int(res.capped[: run.n_networks].sum()),
        }
    )
    # one atomic header write: the level's checksums, levels_done, and the clean-up of the
    # previous level's optimizer state as a pending deletion (finished by the next open if a
    # kill comes in between)
    losses = [a for a in ("test_loss", "val_loss", "train_loss", "steps", "capped") if a in g]
    run.header = st.seal_level(
        g,
        f"levels/{i}",
        exclude=[f"levels/{i}/opt"],
        also=losses,
        delete=[f"levels/{i - 1}/opt"] if i > 0 else [],
        levels_done=i + 1,
        timings=run.timings,
    )
    run.levels_done = i + 1
    run.state = res.state


def run_experiment(
    config: ExperimentConfig,
    out,
    *,
    progress=None,
    cancel=None,
    resume: bool = True,
    overwrite: bool = False,
    data=None,
) -> Experiment:
    """Train ``config.n_networks`` networks through the levels of ``config.method`` (magnitude
    pruning through ``config.schedule`` by default); write each level to ``out``.

    Parameters
    ----------
    config : ExperimentConfig
        Validated here (bad configs raise ValueError).
    out : str or Path
        Experiment store directory (e.g. ``"runs/small.zarr"``). When ``config.dataset`` is None
        the generated dataset goes to ``<out's folder>/datasets/moth-n<N>-seed<S>.zarr`` (shared
        by experiments with the same size and seed; generation itself is resumable).
    progress : callable(Progress), optional
        :class:`mothlab.progress.Progress` events: from the start (opening, dataset generation
        with ``level = -1``, compiling), then after every compiled chunk (payload keys in
        :func:`train_level`).
    cancel : callable() -> bool, optional
        Checked between chunks; when it returns True the run raises
        :class:`~mothlab.progress.Cancelled`, leaving the finished levels in a resumable store.
    resume : bool
        Continue an unfinished store at ``out`` made with the same config (a finished one is just
        opened). False: an existing store is an error unless ``overwrite``.
    data : dict, optional
        Already scaled splits ``{"train": (X, Y), "val": ..., "test": ...}`` instead of a dataset
        store (tests, notebooks).
    """
    run = open_run(
        config, out, resume=resume, overwrite=overwrite, data=data, progress=progress, cancel=cancel
    )
    if run.complete:
        return load_experiment(run.out)
    t_run = time.perf_counter()
    for i in range(run.levels_done, run.n_levels):
        write_level(run, train_level(run, i, progress=progress, cancel=cancel))
    _drop_opt(run.group, run.n_levels - 1)  # nothing resumes a complete experiment
    st.mark_complete(run.group, run_seconds=round(time.perf_counter() - t_run, 3))
    capped = [t.get("capped", 0) for t in run.timings]
    report(
        progress,
        1.0,
        f"done: {run.n_levels} levels; networks at the step cap per level: {capped}",
        level=run.n_levels - 1,
        n_levels=run.n_levels,
        eta_s=0.0,
    )
    return load_experiment(run.out)


def optimal_level_from(losses, threshold: float = 1e-3, rule: str = "prefix") -> np.ndarray:
    """Optimal level per network from losses (L, n) → (n,) int, −1 when none.

    ``prefix`` (default): the sparsest level such that it and all denser levels are below
    ``threshold`` (NaN counts as failing). ``last`` (the original code, defect 5): the last
    level below ``threshold`` whatever came before.
    """
    losses = np.asarray(losses, float)
    if losses.ndim != 2:
        raise ValueError(f"losses must be (L, n_networks), got shape {losses.shape}.")
    below = losses < threshold
    if rule == "last":
        L = below.shape[0]
        return np.where(below.any(0), L - 1 - np.argmax(below[::-1], axis=0), -1).astype(int)
    if rule != "prefix":
        raise ValueError(f"rule must be 'prefix' or 'last', got {rule!r}.")
    run = np.cumprod(below, axis=0).astype(bool)  # all denser levels under too
    return (run.sum(axis=0) - 1).astype(int)


# ---------------------------------------------------------------------------- reader
class Experiment:
    """A (possibly unfinished) experiment store opened read-only.

    Attributes: ``path``, ``header``, ``config`` (:class:`ExperimentConfig`), ``sparsity_levels``
    (L,), ``n_networks``, ``layer_sizes``, ``levels_done``, ``complete``, ``as_published``.
    Per-level arrays are read lazily; a level not yet done raises ValueError.
    """

    def __init__(self, path, group, header):
        self.path = Path(path)
        self._g = group
        self.header = header
        self.config = ExperimentConfig.from_dict(header["config"])
        self.sparsity_levels = np.asarray(header["sparsity_levels"], float)
        self.n_networks = int(header["n_networks"])
        self.layer_sizes = list(header["layer_sizes"])
        self.levels_done = int(header.get("levels_done", 0))
        self.complete = bool(header.get("complete", False))
        self.as_published = bool(header.get("as_published", False))

    def __repr__(self):
        state = (
            "complete"
            if self.complete
            else f"{self.levels_done}/{len(self.sparsity_levels)} levels"
        )
        flag = ", AS PUBLISHED (defects 1-6)" if self.as_published else ""
        return (
            f"Experiment({str(self.path)!r}, {self.n_networks} networks "
            f"{'-'.join(map(str, self.layer_sizes))}, {state}{flag})"
        )

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def _level(self, level: int):
        L = len(self.sparsity_levels)
        if not isinstance(level, int | np.integer) or not -L <= level < L:
            raise ValueError(f"level must be an integer in [0, {L}), got {level!r}.")
        level = int(level) % L
        if level >= self.levels_done:
            raise ValueError(
                f"level {level} is not done yet ({self.levels_done} of {L} levels "
                "finished); wait for the run or resume it."
            )
        return self._g[f"levels/{level}"]

    def masks(self, level: int) -> list[np.ndarray]:
        """Weight masks of ``level``: one bool array (n_networks, n_in, n_out) per layer."""
        lv = self._level(level)
        return [lv[f"mw{l}"][: self.n_networks] for l in range(self.n_layers)]

    def bias_masks(self, level: int) -> list[np.ndarray]:
        """Bias masks: one bool array (n_networks, n_out) per layer."""
        lv = self._level(level)
        return [lv[f"mb{l}"][: self.n_networks] for l in range(self.n_layers)]

    def weights(self, level: int) -> list[np.ndarray]:
        """Effective weights (raw × mask; pruned = 0): float32 (n_networks, n_in, n_out)."""
        lv = self._level(level)
        return [
            np.where(lv[f"mw{l}"][: self.n_networks], lv[f"w{l}"][: self.n_networks], np.float32(0))
            for l in range(self.n_layers)
        ]

    def biases(self, level: int) -> list[np.ndarray]:
        """Effective biases (raw × mask): float32 (n_networks, n_out)."""
        lv = self._level(level)
        return [
            np.where(lv[f"mb{l}"][: self.n_networks], lv[f"b{l}"][: self.n_networks], np.float32(0))
            for l in range(self.n_layers)
        ]

    def _loss(self, name):
        return np.asarray(self._g[name][...])[:, : self.n_networks]

    @property
    def test_loss(self) -> np.ndarray:
        """(L, n_networks) MSE on the held-out test split (NaN for levels not done)."""
        return self._loss("test_loss")

    @property
    def val_loss(self) -> np.ndarray:
        """(L, n_networks) MSE on the whole validation split."""
        return self._loss("val_loss")

    @property
    def train_loss(self) -> np.ndarray:
        """(L, n_networks) MSE on the first ``train_eval_samples`` training samples."""
        return self._loss("train_loss")

    @property
    def steps(self) -> np.ndarray:
        """(L, n_networks) batches trained per level."""
        return np.asarray(self._g["steps"][...])[:, : self.n_networks]

    @property
    def capped(self) -> np.ndarray:
        """(L, n_networks) bool: the network stopped at its step cap, not by its stop rule
        (all False for stores made before this was recorded)."""
        if "capped" not in self._g:
            return np.zeros((len(self.sparsity_levels), self.n_networks), bool)
        return np.asarray(self._g["capped"][...])[:, : self.n_networks]

    def optimal_level(self, threshold: float = 1e-3) -> np.ndarray:
        """Index of each network's optimally sparse level, (n_networks,) int, −1 when none.

        The sparsest level such that it and every denser level have test loss below
        ``threshold``. For an ``as_published`` experiment: the original rule (defect 5), the
        last level whose *training* loss is below the threshold.
        """
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}.")
        done = self.levels_done
        if self.as_published:
            return optimal_level_from(self.train_loss[:done], threshold, rule="last")
        return optimal_level_from(self.test_loss[:done], threshold)

    def loss_history(self, level: int) -> dict:
        """Training curves of ``level``: ``{"val": (n_chunks, n), "train": (n_chunks, n),
        "steps": (n_chunks,) batches at the end of each chunk}`` (mean loss per chunk, NaN after
        a network stopped)."""
        lv = self._level(level)
        val = np.asarray(lv["hist_val"][...])[:, : self.n_networks]
        tr = np.asarray(lv["hist_train"][...])[:, : self.n_networks]
        c = int(self.config.chunk_steps)
        return {"val": val, "train": tr, "steps": c * (1 + np.arange(val.shape[0]))}


def load_experiment(path) -> Experiment:
    """Open an experiment store (finished, running or crashed) for reading."""
    group, header = st.open_store(
        path, KIND, mode="r", required=("config", "sparsity_levels", "n_networks", "layer_sizes")
    )
    return Experiment(path, group, header)
