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
    levels/<i>/w<l>, b<l>               raw weights/biases after level i (float32)
    levels/<i>/mw<l>, mb<l>             masks (bool)
    levels/<i>/hist_val, hist_train     (n_chunks, n_padded) mean loss per compiled chunk
    levels/<i>/opt/<j>                  optimizer state (kept for the latest level only: resume)

A level is written completely before ``levels_done`` is raised in the header, and resume restarts
the first unfinished level from the stored state of the level before it. Since every network's
batches come from its own keys and the computation is deterministic, a resumed run ends with the
same numbers as an uninterrupted one (tested, bit for bit, on one device).

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
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .config import N_INPUTS, N_OUTPUTS, ExperimentConfig
from .training import (
    TrainSettings,
    evaluate,
    init_state,
    level_state,
    network_keys,
    prune_state,
    train_chunk,
)

KIND = "experiment"

#: What ``as_published=True`` reproduces on purpose (SCIENCE.md §5, defects 1–6).
PUBLISHED_DEFECTS = (
    "1: bias masks thresholded with the weight cutoff",
    "2: new masks from raw weights, not nested (pruned weights may return)",
    "3: optimizer moments not reset at pruning",
    "4: test loss of a level computed on one data slice indexed by the level",
    "5: optimal level = last level under threshold on training loss",
    "6: early stopping joint over all networks",
)


def _store():
    from mothlab import store
    return store


# ---------------------------------------------------------------------------- data
def _check_features(x, y, config: ExperimentConfig, where: str):
    ls = config.layer_sizes
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != ls[0] or y.shape[1] != ls[-1]:
        raise ValueError(
            f"dataset {where} has {x.shape[-1] if x.ndim else '?'} inputs and "
            f"{y.shape[-1] if y.ndim else '?'} outputs, but the networks need {ls[0]} inputs and "
            f"{ls[-1]} outputs (layer sizes {ls}); use a mothlab flight dataset "
            f"({N_INPUTS} inputs, {N_OUTPUTS} outputs).")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"dataset {where}: {x.shape[0]} input rows but {y.shape[0]} output rows.")
    for name, a in (("inputs", x), ("outputs", y)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"dataset {where} {name} contain NaN or infinity; regenerate it.")


def _load_data(config: ExperimentConfig, out: Path, data, progress, cancel=None):
    """Scaled splits ``{"train": (X, Y), "val": ..., "test": ...}`` and the dataset's record."""
    if data is not None:
        splits = {}
        for k in ("train", "val", "test"):
            if k not in data:
                raise ValueError(f"data must map 'train', 'val' and 'test' to (X, Y); missing {k!r}.")
            x, y = (np.asarray(a, np.float32) for a in data[k])
            _check_features(x, y, config, f"split {k!r}")
            splits[k] = (x, y)
        return splits, {"source": "in-memory arrays (already scaled)",
                        "n": int(sum(len(v[0]) for v in splits.values()))}, None

    from mothlab.data import INPUT_NAMES, OUTPUT_NAMES, generate_dataset, open_dataset

    if config.dataset:
        path = Path(config.dataset)
        ds = open_dataset(path)
    else:
        path = out.parent / "datasets" / f"moth-n{config.n_samples}-seed{config.data_seed}.zarr"

        def gen_progress(done, total):
            if progress is not None:
                progress({"level": -1, "n_levels": len(config.schedule), "sparsity": 0.0,
                          "step": int(done), "losses": None, "train_losses": None,
                          "throughput": 0.0, "eta_s": float("nan"), "stopped": None,
                          "message": f"generating dataset {path.name}: {done}/{total} flights"})

        # a cancel during generation raises mothlab.jobs.JobCancelled; the dataset resumes later
        ds = generate_dataset(path, int(config.n_samples), seed=int(config.data_seed),
                              progress=gen_progress, cancel=cancel)
    hdr = ds.header
    for key, want in (("input_names", INPUT_NAMES), ("output_names", OUTPUT_NAMES)):
        got = hdr.get(key)
        if got is not None and tuple(got) != tuple(want):
            raise ValueError(f"dataset {path} has {key} {got}, expected {list(want)}; "
                             "regenerate it with this mothlab version.")
    idx = ds.splits(seed=int(config.data_seed))
    xs, ys = ds.scalers(seed=int(config.data_seed))
    splits = {}
    for k in ("train", "val", "test"):
        x, y = ds.features(idx[k])
        _check_features(x, y, config, f"{path} split {k!r}")
        splits[k] = (xs.transform(x).astype(np.float32), ys.transform(y).astype(np.float32))
    record = {"source": "store", "path": str(path.resolve()), "n": int(ds.n),
              "seed": hdr.get("seed"), "split_seed": int(config.data_seed),
              "split_sizes": {k: int(len(v)) for k, v in idx.items()},
              "header": {k: v for k, v in hdr.items()
                         if k in ("kind", "created", "mothlab_version", "seed", "n", "precise",
                                  "ranges", "params", "accuracy", "complete")}}
    return splits, record, {"x": xs.to_dict(), "y": ys.to_dict()}


# ---------------------------------------------------------------------------- store helpers
def _write_level(g, i, state, n_layers, hist_val, hist_train):
    lv = g.require_group(f"levels/{i}")
    p, m = state["params"], state["masks"]
    for l in range(n_layers):
        for name, arr in ((f"w{l}", p["w"][l]), (f"b{l}", p["b"][l]),
                          (f"mw{l}", m["w"][l]), (f"mb{l}", m["b"][l])):
            a = np.asarray(arr)
            z = lv.create_array(name, shape=a.shape, dtype=a.dtype,
                                chunks=(min(a.shape[0], 64),) + a.shape[1:], overwrite=True)
            z[...] = a
    for name, a in (("hist_val", hist_val), ("hist_train", hist_train)):
        a = np.asarray(a, np.float32)
        z = lv.create_array(name, shape=a.shape, dtype="float32", overwrite=True)
        z[...] = a
    opt = lv.require_group("opt")
    for j, leaf in enumerate(jax.tree.leaves(state["opt"])):
        a = np.asarray(leaf)
        z = opt.create_array(str(j), shape=a.shape, dtype=a.dtype, overwrite=True)
        z[...] = a


def _drop_opt(out: Path, i: int):
    p = out / "levels" / str(i) / "opt"
    if p.exists():
        shutil.rmtree(p, ignore_errors=True)


def _read_state(g, i, template):
    """Restore params/masks/opt of level ``i`` with the tree structure of ``template``."""
    lv = g[f"levels/{i}"]
    n_layers = len(template["params"]["w"])
    params = {"w": [jnp.asarray(lv[f"w{l}"][...]) for l in range(n_layers)],
              "b": [jnp.asarray(lv[f"b{l}"][...]) for l in range(n_layers)]}
    masks = {"w": [jnp.asarray(lv[f"mw{l}"][...]) for l in range(n_layers)],
             "b": [jnp.asarray(lv[f"mb{l}"][...]) for l in range(n_layers)]}
    leaves, tree = jax.tree.flatten(template["opt"])
    if "opt" not in lv:
        raise ValueError(f"level {i} of the experiment has no optimizer state to resume from; "
                         "rerun with resume=False (CLI: --overwrite).")
    opt = jax.tree.unflatten(tree, [jnp.asarray(lv["opt"][str(j)][...]).astype(t.dtype)
                                    for j, t in enumerate(leaves)])
    return {"params": params, "masks": masks, "opt": opt}


def _device_record():
    devs = jax.local_devices()
    return {"platform": devs[0].platform, "n_devices": len(devs),
            "kind": getattr(devs[0], "device_kind", devs[0].platform),
            "process_count": jax.process_count()}


# ---------------------------------------------------------------------------- runner
def run_experiment(config: ExperimentConfig, out, *, progress=None, cancel=None,
                   resume: bool = True, overwrite: bool = False, data=None) -> Experiment:
    """Train and prune ``config.n_networks`` networks through ``config.schedule``; write to ``out``.

    Parameters
    ----------
    config : ExperimentConfig
        Validated here (bad configs raise ValueError).
    out : str or Path
        Experiment store directory (e.g. ``"runs/small.zarr"``). When ``config.dataset`` is None
        the generated dataset goes to ``<out's folder>/datasets/moth-n<N>-seed<S>.zarr`` (shared
        by experiments with the same size and seed; generation itself is resumable).
    progress : callable(dict), optional
        Called after every compiled chunk with ``{"level", "n_levels", "sparsity", "step",
        "losses" (n,) last-chunk mean val loss, "train_losses", "throughput" (network-steps/s),
        "eta_s", "stopped" (n,) bool, "message"}``.
    cancel : callable() -> bool, optional
        Checked between chunks; when it returns True the run stops, leaving the finished levels
        and a resumable store, and the partial :class:`Experiment` is returned.
    resume : bool
        Continue an unfinished store at ``out`` made with the same config (a finished one is just
        opened). False: an existing store is an error unless ``overwrite``.
    data : dict, optional
        Already scaled splits ``{"train": (X, Y), "val": ..., "test": ...}`` instead of a dataset
        store (tests, notebooks).
    """
    if not isinstance(config, ExperimentConfig):
        raise ValueError("config must be an ExperimentConfig (e.g. ExperimentConfig.preset('tiny')).")
    config.validate()
    st = _store()
    out = Path(out)
    cfg = config.to_dict()
    levels = config.sparsity_levels
    L = len(levels)
    n = int(config.n_networks)
    devices = jax.local_devices()
    n_pad = int(math.ceil(n / len(devices)) * len(devices))
    sizes = config.layer_sizes
    n_layers = len(sizes) - 1
    settings = TrainSettings.from_config(config)

    group = None
    if out.exists() and resume and not overwrite:
        group, header = st.open_store(out, KIND)
        old = header.get("config", {})
        diff = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
        if diff:
            raise ValueError(f"{out} holds an experiment with a different config (fields {diff});"
                             " resume it with the same config, or choose another --out, or "
                             "overwrite it.")
        if header.get("n_padded") != n_pad:
            raise ValueError(f"{out} was run on {header.get('device', {}).get('n_devices')} "
                             f"devices (padded to {header.get('n_padded')} networks); resume it "
                             f"with a device count that pads {n} networks the same way.")
        if st.is_complete(group):
            return load_experiment(out)

    splits, data_record, scalers = _load_data(config, out, data, progress, cancel)
    if data_record.get("source") == "store" and group is not None:
        if header.get("dataset", {}).get("path") != data_record["path"]:
            raise ValueError(f"{out} was trained on {header['dataset'].get('path')}; resume with "
                             "that dataset.")

    if group is None:
        header = {"config": cfg, "layer_sizes": sizes, "sparsity_levels": levels,
                  "n_networks": n, "n_padded": n_pad,
                  "seeds": {"experiment": int(config.seed), "data": int(config.data_seed),
                            "network_key": "jax.random.fold_in(PRNGKey(seed), i) for network i"},
                  "dataset": data_record, "scalers": scalers,
                  "as_published": bool(config.as_published),
                  "published_defects": list(PUBLISHED_DEFECTS) if config.as_published else [],
                  "counting_rule": "layer keeps n - floor(s*n + 1/2) weights",
                  "levels_done": 0, "timings": [], "device": _device_record()}
        group = st.create_store(out, KIND, header, overwrite=overwrite)
        for name in ("test_loss", "val_loss", "train_loss"):
            group.create_array(name, shape=(L, n_pad), dtype="float32", fill_value=np.nan)
        group.create_array("steps", shape=(L, n_pad), dtype="int32", fill_value=0)
        header = st.read_header(group)

    mesh = jax.sharding.Mesh(np.array(devices), ("net",))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("net"))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    keys = jax.device_put(network_keys(int(config.seed), range(n_pad)), shard)
    template = init_state(keys, sizes, settings, config.init)
    done = int(header.get("levels_done", 0))
    state = template if done == 0 else _read_state(group, done - 1, template)
    state = jax.device_put(state, shard)
    dev_data = jax.device_put((splits["train"][0], splits["train"][1], splits["val"][0],
                               splits["val"][1]), repl)
    xte, yte = splits["test"]
    xtr_eval = splits["train"][0][:config.train_eval_samples]
    ytr_eval = splits["train"][1][:config.train_eval_samples]
    timings = list(header.get("timings", []))
    t_run = time.perf_counter()

    for i in range(done, L):
        t0 = time.perf_counter()
        s = levels[i]
        state = prune_state(state, s, config.pruning, config.bias_pruning, settings)
        lset = settings
        if i == 0 and config.dense_max_steps:
            lset = dataclasses.replace(lset, max_steps=int(config.dense_max_steps))
        if i == 0 and config.dense_min_steps is not None:
            lset = dataclasses.replace(lset, min_steps=int(config.dense_min_steps))
        lst = jax.device_put(level_state(state, keys, i, lset), shard)
        hv, ht = [], []
        while True:
            if cancel is not None and cancel():
                return load_experiment(out)
            tc = time.perf_counter()
            lst, (tl, vl) = train_chunk(lst, dev_data, int(config.chunk_steps), lset)
            vl = np.asarray(vl)
            tl = np.asarray(tl)
            stopped = np.asarray(lst["stopped"])
            steps = np.asarray(lst["step"])
            dt = time.perf_counter() - tc
            active_steps = int(np.isfinite(vl).sum())
            with np.errstate(all="ignore"):
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    hv.append(np.nanmean(vl, axis=0))
                    ht.append(np.nanmean(tl, axis=0))
            if progress is not None:
                frac = min(1.0, float(np.mean(np.minimum(steps, lset.max_steps))
                                      / max(1, lset.max_steps)))
                per_level = (np.mean(timings_s(timings)) if timings
                             else (time.perf_counter() - t0) / max(frac, 1e-3))
                eta = max(0.0, per_level * (L - i) - (time.perf_counter() - t0))
                progress({"level": i, "n_levels": L, "sparsity": s, "step": int(steps.max()),
                          "losses": hv[-1][:n], "train_losses": ht[-1][:n],
                          "throughput": active_steps / dt if dt > 0 else 0.0,
                          "eta_s": float(eta), "stopped": stopped[:n],
                          "message": f"level {i + 1}/{L} (sparsity {s:.0%}): "
                                     f"{int(stopped[:n].sum())}/{n} networks stopped"})
            if stopped.all():
                break
        state = {"params": lst["params"], "masks": lst["masks"], "opt": lst["opt"]}
        if config.as_published:
            # defect 4: one slice of the test set, indexed by the level
            b = min(int(config.batch_size), len(xte))
            off = (i * b) % max(1, len(xte) - b + 1)
            test = evaluate(state["params"], state["masks"], xte[off:off + b], yte[off:off + b],
                            config.activation, config.eval_batch)
        else:
            test = evaluate(state["params"], state["masks"], xte, yte, config.activation,
                            config.eval_batch)
        val = evaluate(state["params"], state["masks"], *splits["val"], config.activation,
                       config.eval_batch)
        train = evaluate(state["params"], state["masks"], xtr_eval, ytr_eval, config.activation,
                         config.eval_batch)
        _write_level(group, i, state, n_layers, np.stack(hv), np.stack(ht))
        group["test_loss"][i] = test.astype(np.float32)
        group["val_loss"][i] = val.astype(np.float32)
        group["train_loss"][i] = train.astype(np.float32)
        group["steps"][i] = steps.astype(np.int32)
        timings.append({"level": i, "seconds": round(time.perf_counter() - t0, 3),
                        "network_steps": int(steps.sum())})
        st.update_header(group, levels_done=i + 1, timings=timings)
        if i > 0:
            _drop_opt(out, i - 1)
    st.mark_complete(group, run_seconds=round(time.perf_counter() - t_run, 3))
    return load_experiment(out)


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


def timings_s(timings) -> list[float]:
    return [t["seconds"] for t in timings]


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
        state = "complete" if self.complete else f"{self.levels_done}/{len(self.sparsity_levels)} levels"
        flag = ", AS PUBLISHED (defects 1-6)" if self.as_published else ""
        return (f"Experiment({str(self.path)!r}, {self.n_networks} networks "
                f"{'-'.join(map(str, self.layer_sizes))}, {state}{flag})")

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def _level(self, level: int):
        L = len(self.sparsity_levels)
        if not isinstance(level, int | np.integer) or not -L <= level < L:
            raise ValueError(f"level must be an integer in [0, {L}), got {level!r}.")
        level = int(level) % L
        if level >= self.levels_done:
            raise ValueError(f"level {level} is not done yet ({self.levels_done} of {L} levels "
                             "finished); wait for the run or resume it.")
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
        return [np.where(lv[f"mw{l}"][: self.n_networks], lv[f"w{l}"][: self.n_networks],
                         np.float32(0)) for l in range(self.n_layers)]

    def biases(self, level: int) -> list[np.ndarray]:
        """Effective biases (raw × mask): float32 (n_networks, n_out)."""
        lv = self._level(level)
        return [np.where(lv[f"mb{l}"][: self.n_networks], lv[f"b{l}"][: self.n_networks],
                         np.float32(0)) for l in range(self.n_layers)]

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
    group, header = _store().open_store(path, KIND, mode="r")
    return Experiment(path, group, header)
