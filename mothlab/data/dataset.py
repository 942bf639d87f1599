"""Datasets of simulated flights, streamed to zarr stores chunk by chunk.

Layout of a dataset store (a zarr v3 group; header described in :mod:`mothlab.store`)::

    state0    float64 (n, 8)   initial states [x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]
    controls  float64 (n, 3)   constant controls [F, α, τ]
    state_f   float32 (n, 8)   states after 20 ms (float64 when generated with precise=True)

Chunk ``i`` holds trajectories ``[i·chunk, (i+1)·chunk)``; its samples are drawn from
``numpy.random.default_rng([seed, i])``, so they depend only on the seed and the chunk index.
That is what makes generation resumable with the *same* result: after an interruption the
missing chunks are computed exactly as they would have been. The header records how many
chunks are done after each one is written, and the store is marked complete only after the
last one, so an interrupted store never opens as a finished dataset.

>>> import tempfile, os
>>> ds = generate_dataset(os.path.join(tempfile.mkdtemp(), "d.zarr"), 6, seed=1, chunk=3)
>>> X, Y = ds.features()
>>> X.shape, Y.shape, X.dtype.name
((6, 10), (6, 7), 'float32')
>>> {k: len(v) for k, v in ds.splits().items()}
{'train': 4, 'val': 1, 'test': 1}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mothlab import store

from .features import INPUT_NAMES, OUTPUT_NAMES
from .features import features as _features
from .sampling import SamplingRanges, check_count, check_seed
from .scaler import MinMaxScaler

KIND = "dataset"
SPAN = 0.02  # s, the length of one flight
ARRAYS = {"state0": 8, "controls": 3, "state_f": 8}


def accuracy_statement(precise: bool) -> str:
    """What is known about the accuracy of ``state_f`` (recorded in every dataset header)."""
    from mothlab.moth.integrate import DEFAULT_STEPS

    steps = DEFAULT_STEPS["float64" if precise else "float32"]
    target = "1e-7" if precise else "1e-4"
    dtype = "float64" if precise else "float32"
    measured = "2.7e-8" if precise else "2.2e-6"
    return (f"state_f from mothlab.moth.simulate ({dtype}, exponential Runge-Kutta with the stiff "
            f"damper mode integrated exactly, {steps} steps per 20 ms). Specified accuracy: the "
            f"final state's error, divided by that state variable's range over the S3 sample, is "
            f"<= {target} on every trajectory; measured worst over 5000 S3 samples: {measured} "
            f"(see mothlab.moth.integrate; checked by tests/test_moth.py against scipy Radau and "
            f"by `mothlab bench simulate`).")


def _device() -> str:
    try:
        import jax

        d = jax.devices()[0]
        return f"{d.platform}:{getattr(d, 'device_kind', '?')} x{len(jax.devices())}"
    except Exception:  # noqa: BLE001 - a description only
        return "unknown"


def _as_ranges(ranges) -> SamplingRanges:
    if ranges is None:
        return SamplingRanges()
    if isinstance(ranges, SamplingRanges):
        return ranges
    if isinstance(ranges, dict):
        return SamplingRanges.from_dict(ranges)
    raise ValueError(f"ranges must be a SamplingRanges, a dict {{name: [min, max]}} or None; got "
                     f"{type(ranges).__name__}.")


def _as_params(params):
    from mothlab.moth import MothParams

    if params is None:
        return MothParams()
    if isinstance(params, MothParams):
        return params.check()
    if isinstance(params, dict):
        return MothParams(**params)
    raise ValueError(f"params must be a MothParams, a dict of its values or None; got "
                     f"{type(params).__name__}.")


def _config(n, seed, ranges, params, precise, chunk) -> dict:
    """The fields that determine a dataset's content (compared when resuming)."""
    return {"n": n, "seed": seed, "chunk": chunk, "precise": bool(precise),
            "dtype": "float64" if precise else "float32", "t": [0.0, SPAN],
            "ranges": ranges.to_dict(), "params": params.to_dict()}


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key, value in new.items():
        if store.to_json(old.get(key)) != store.to_json(value):
            out.append(f"{key}: store has {old.get(key)!r}, requested {value!r}")
    return out


def generate_dataset(path, n: int, *, seed: int = 0, ranges=None, params=None,
                     precise: bool = False, chunk: int = 65536,
                     progress: Callable[[int, int], None] | None = None, resume: bool = True,
                     overwrite: bool = False, cancel: Callable[[], bool] | None = None
                     ) -> Dataset:
    """Simulate ``n`` S3 flights and stream them to a zarr store at ``path``; return it opened.

    Parameters
    ----------
    path : str or Path
        Store directory (e.g. ``"train.zarr"``).
    n : int > 0
        Number of trajectories.
    seed : int >= 0
        Chunk ``i`` is sampled from ``default_rng([seed, i])``.
    ranges : SamplingRanges or dict, optional
        The S3 ranges (default: the paper's).
    params : MothParams or dict, optional
        The body (default: the published S1 set).
    precise : bool
        Simulate in float64 (``state_f`` stored as float64).
    chunk : int > 0
        Trajectories per chunk: the unit of work, of storage and of resumption.
    progress : callable(done, total), optional
        Called after each chunk is safely stored, with trajectories done so far and ``n``.
        If it raises, generation stops there and the store stays resumable.
    resume : bool
        Continue an interrupted store at ``path`` made with the same settings (an already
        complete one is simply opened). With ``resume=False`` an existing store is an error
        unless ``overwrite``.
    overwrite : bool
        Delete an existing mothlab store at ``path`` and start again.
    cancel : callable() -> bool, optional
        Polled between chunks; when it returns True generation stops, leaving a resumable store,
        and :class:`mothlab.jobs.JobCancelled` is raised (a background job then ends as
        cancelled).

    Raises ValueError for bad arguments, a foreign or mismatching store at ``path``;
    RuntimeError if the simulation produced non-finite states (nothing is marked done).
    """
    from mothlab.moth import simulate

    n = check_count(n, "n")
    chunk = check_count(chunk, "chunk")
    if not isinstance(seed, int) or isinstance(seed, bool):
        check_seed(seed)  # a clear message for negatives and non-integers
        seed = int(seed)
    seed = check_seed(seed)
    ranges = _as_ranges(ranges)
    params = _as_params(params)
    config = _config(n, seed, ranges, params, precise, chunk)
    path = Path(path)
    n_chunks = math.ceil(n / chunk)

    exists = path.exists() and not (path.is_dir() and not any(path.iterdir()))
    if exists and not overwrite:
        if not resume:
            raise ValueError(f"{path} already exists; pass overwrite=True (CLI: --overwrite) to "
                             "replace it, or resume=True to continue it.")
        group, header = store.open_store(path, KIND)
        diff = _differences(header, config)
        if diff:
            raise ValueError(f"The dataset store at {path} was made with different settings, so "
                             "it cannot be resumed: " + "; ".join(diff) + ". Use the same "
                             "settings, another path, or overwrite=True (CLI: --overwrite).")
        if store.is_complete(group):
            return open_dataset(path)
        _check_arrays(path, group, n)
    else:
        header = {**config, "n_chunks": n_chunks, "chunks_done": 0, "n_done": 0,
                  "accuracy": accuracy_statement(precise), "device": _device(),
                  "input_names": list(INPUT_NAMES), "output_names": list(OUTPUT_NAMES),
                  "columns": {"state0": "x xd y yd theta thetad phi phid".split(),
                              "controls": ["F", "alpha", "tau"],
                              "state_f": "x xd y yd theta thetad phi phid".split()},
                  "timings": {"simulate_s": 0.0, "write_s": 0.0, "sessions": 0}}
        group = store.create_store(path, KIND, header, overwrite=overwrite)
        dtype_f = "float64" if precise else "float32"
        for name, width in ARRAYS.items():
            # one zarr chunk per generation chunk: a chunk is written whole, in one file
            group.create_array(name, shape=(n, width), chunks=(chunk, width),
                               dtype=dtype_f if name == "state_f" else "float64",
                               fill_value=float("nan"))
        header = store.read_header(group)

    try:
        timings = dict(header["timings"])
        timings["sessions"] = int(timings.get("sessions", 0)) + 1
        start_chunk = int(header["chunks_done"])
        if not 0 <= start_chunk <= n_chunks:
            raise ValueError(f"chunks_done = {start_chunk} outside [0, {n_chunks}]")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has a corrupted dataset header ({err}); it cannot be resumed. "
                         "Regenerate it with overwrite=True (CLI: --overwrite).") from None
    arrays = {name: group[name] for name in ARRAYS}
    for i in range(start_chunk, n_chunks):
        if cancel is not None and cancel():
            from mothlab.jobs import JobCancelled

            raise JobCancelled(f"Dataset generation cancelled after {i * chunk} of {n} "
                               f"trajectories; {path} resumes from there.")
        lo, hi = i * chunk, min((i + 1) * chunk, n)
        t0 = time.perf_counter()
        state0, controls = ranges.sample(hi - lo, seed=[seed, i])
        state_f = simulate(state0, controls, params, t=[0.0, SPAN], precise=precise)[:, -1]
        t1 = time.perf_counter()
        if not np.all(np.isfinite(state_f)):
            bad = int(np.sum(~np.all(np.isfinite(state_f), axis=1)))
            raise RuntimeError(f"{bad} of {hi - lo} simulated flights in chunk {i} ended with "
                               "NaN/inf states; the store was not marked done. This is a bug in "
                               "the integrator or the ranges are outside what it handles.")
        arrays["state0"][lo:hi] = state0
        arrays["controls"][lo:hi] = controls
        arrays["state_f"][lo:hi] = state_f
        t2 = time.perf_counter()
        timings["simulate_s"] = timings["simulate_s"] + (t1 - t0)
        timings["write_s"] = timings["write_s"] + (t2 - t1)
        if i == start_chunk:
            # a session's first chunk includes JIT compilation; later chunks show the steady rate
            timings["first_chunk_s"] = t2 - t0
            timings["first_chunk_n"] = hi - lo
            steady_s, steady_n = 0.0, 0
        else:
            steady_s, steady_n = steady_s + (t2 - t0), steady_n + (hi - lo)
            timings["steady_trajectories_per_s"] = steady_n / steady_s if steady_s > 0 else None
        # the header says a chunk is done only after its data is on disk
        store.update_header(group, chunks_done=i + 1, n_done=hi, timings=timings)
        if progress is not None:
            progress(hi, n)
    total = timings["simulate_s"] + timings["write_s"]
    # over all sessions, compilation included
    timings["trajectories_per_s"] = n / total if total > 0 else None
    store.mark_complete(group, timings=timings)
    return open_dataset(path)


def _check_arrays(path, group, n):
    for name, width in ARRAYS.items():
        try:
            arr = group[name]
        except KeyError:
            raise ValueError(f"{path} is a corrupted dataset store: array {name!r} is missing.") \
                from None
        if tuple(arr.shape) != (n, width):
            raise ValueError(f"{path} is a corrupted dataset store: array {name!r} has shape "
                             f"{tuple(arr.shape)}, expected {(n, width)}.")


def open_dataset(path) -> Dataset:
    """Open a complete dataset store lazily (arrays stay on disk until indexed).

    Raises FileNotFoundError when ``path`` does not exist; ValueError when it is not a mothlab
    dataset store (foreign zarr group, other kind, corrupted header or arrays) or when its
    generation was interrupted (the message says how to resume it).
    """
    path = Path(path)
    group, header = store.open_store(path, KIND, mode="r")
    try:
        n = check_count(header["n"], "n")
        chunk = int(header["chunk"])
        seed = header["seed"]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} has a corrupted dataset header ({err}).") from None
    if not store.is_complete(group):
        done = header.get("n_done", 0)
        flag = " --precise" if header.get("precise") else ""
        raise ValueError(
            f"The dataset at {path} is incomplete: its generation was interrupted after {done} "
            f"of {n} trajectories. Resume it with `mothlab dataset --n {n} --seed {seed} "
            f"--chunk {chunk}{flag} --out {path}` or generate_dataset(path, {n}, seed={seed}, "
            f"chunk={chunk}, ...) with the same settings.")
    _check_arrays(path, group, n)
    return Dataset(path, group, header)


class Dataset:
    """A dataset store opened for reading.

    Attributes
    ----------
    path : Path
    n : int, number of trajectories
    header : dict, the store's JSON header (config, seed, timings, accuracy, versions)
    params : MothParams, the body that was simulated
    ranges : SamplingRanges, the S3 ranges that were sampled
    state0, controls, state_f : lazy zarr arrays (n, 8), (n, 3), (n, 8)
    """

    def __init__(self, path, group, header: dict):
        from mothlab.moth import MothParams

        self.path = Path(path)
        self.header = header
        self.n = int(header["n"])
        try:
            self.params = MothParams(**header["params"])
            self.ranges = SamplingRanges.from_dict(header["ranges"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{self.path} has a corrupted dataset header: {err}") from None
        self.state0 = group["state0"]
        self.controls = group["controls"]
        self.state_f = group["state_f"]

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, n={self.n}, seed={self.header['seed']}, "
                f"precise={self.header['precise']})")

    def _index(self, idx) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.dtype == bool:
            if arr.shape != (self.n,):
                raise ValueError(f"A boolean index must have shape ({self.n},); got {arr.shape}.")
            return np.flatnonzero(arr)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"idx must be a 1-D array of integer row indices; got dtype "
                             f"{arr.dtype}, shape {arr.shape}.")
        if arr.size and (arr.min() < 0 or arr.max() >= self.n):
            raise ValueError(f"idx must lie in [0, {self.n - 1}]; got values from {arr.min()} to "
                             f"{arr.max()}.")
        return arr.astype(np.int64)

    def _rows(self, idx):
        if idx is None:
            return self.state0[:], self.controls[:], self.state_f[:]
        rows = self._index(idx)
        if rows.size == 0:
            return np.zeros((0, 8)), np.zeros((0, 3)), np.zeros((0, 8))
        # zarr reads whole chunks; read each touched chunk once, in sorted order
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        uniq, inverse = np.unique(srt, return_inverse=True)
        out = [a.get_orthogonal_selection((uniq, slice(None)))[inverse]
               for a in (self.state0, self.controls, self.state_f)]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return tuple(o[back] for o in out)

    def features(self, idx=None) -> tuple[np.ndarray, np.ndarray]:
        """Network inputs and outputs ``(X (m, 10), Y (m, 7))`` float32 of rows ``idx``.

        ``idx``: None (all rows), integer indices (any order) or a boolean mask of length n.
        """
        return _features(*self._rows(idx))

    def splits(self, seed: int = 0, test: float = 0.2, val: float = 0.2) -> dict[str, np.ndarray]:
        """Train/validation/test row indices (sorted int64), disjoint and covering all rows.

        A seeded permutation of the rows: its first ``round(test·n)`` are the test split, then
        ``round(val·rest)`` of the rest are the validation split, the remainder the training split
        (the paper: 80/20, then 80/20 of the 80).
        """
        return split_indices(self.n, seed=seed, test=test, val=val)

    def scalers(self, seed: int = 0, test: float = 0.2, val: float = 0.2,
                block: int | None = None) -> tuple[MinMaxScaler, MinMaxScaler]:
        """Min–max scalers for X and Y fitted on the training split of :meth:`splits` only.

        Reads the store block by block (``block`` rows, default the store's chunk), so the
        training split never has to fit in memory at once.
        """
        train = np.zeros(self.n, dtype=bool)
        train[self.splits(seed=seed, test=test, val=val)["train"]] = True
        block = check_count(block or int(self.header["chunk"]), "block")
        xs, ys = MinMaxScaler(), MinMaxScaler()
        for lo in range(0, self.n, block):
            hi = min(lo + block, self.n)
            mask = train[lo:hi]
            if not mask.any():
                continue
            X, Y = _features(self.state0[lo:hi], self.controls[lo:hi], self.state_f[lo:hi])
            xs.partial_fit(X[mask])
            ys.partial_fit(Y[mask])
        return xs, ys


def split_indices(n: int, seed: int = 0, test: float = 0.2, val: float = 0.2
                  ) -> dict[str, np.ndarray]:
    """The split rule of :meth:`Dataset.splits` for ``n`` rows (see there)."""
    n = check_count(n, "n")
    seed = check_seed(seed)
    for name, frac in (("test", test), ("val", val)):
        if not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1); got {frac!r}.")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test * n))
    n_val = int(round(val * (n - n_test)))
    if n - n_test - n_val < 1:
        raise ValueError(f"With n = {n}, test = {test} and val = {val} the training split is "
                         "empty; use more trajectories or smaller fractions.")
    return {"train": np.sort(perm[n_test + n_val:]).astype(np.int64),
            "val": np.sort(perm[n_test:n_test + n_val]).astype(np.int64),
            "test": np.sort(perm[:n_test]).astype(np.int64)}
