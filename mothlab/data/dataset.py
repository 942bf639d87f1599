"""Datasets of simulated flights, streamed to zarr stores chunk by chunk.

Layout of a dataset store (a zarr v3 group; header described in :mod:`mothlab.store`)::

    state0    float64 (n, 8)   initial states [x, ẋ, y, ẏ, θ, θ̇, φ, φ̇]
    controls  float64 (n, 3)   constant controls [F, α, τ]
    state_f   float32 (n, 8)   states after 20 ms (float64 when generated with precise=True)

Chunk ``i`` holds trajectories ``[i·chunk, (i+1)·chunk)``. Rows are drawn in fixed blocks of
:data:`SAMPLE_BLOCK` from ``numpy.random.default_rng([seed, block])``, so a row depends only on
the seed and its index — not on ``chunk`` or ``n``: the same seed gives the same flights whatever
the chunking (initial states and controls bit for bit; end states to the integrator's float32
accuracy, since it plans its steps per batch: measured ≤ 1.5e-5 relative), and a resumed
generation computes the missing chunks exactly as they would have been (same chunks, same
batches: bit for bit). The header records how many
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
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from mothlab import moth, store
from mothlab.moth import MothParams
from mothlab.moth.integrate import DEFAULT_STEPS, MEASURED_ACCURACY
from mothlab.progress import CancelFn, Progress, ProgressFn, check_cancel, report, span

from .features import INPUT_NAMES, OUTPUT_NAMES
from .features import features as _features
from .sampling import SamplingRanges, check_count, check_seed
from .scaler import MinMaxScaler

KIND = "dataset"
SPAN = 0.02  # s, the length of one flight
ARRAYS = {"state0": 8, "controls": 3, "state_f": 8}


#: The integrator that made ``state_f`` (recorded in every dataset header as ``integrator``).
INTEGRATOR = (
    "five-stage exponential Runge-Kutta of Hochbruck & Ostermann (2005, stiff order 4) "
    "with the stiff damper mode integrated exactly"
)


def accuracy_statement(precise: bool) -> str:
    """What is known about the accuracy of ``state_f`` (recorded in every dataset header)."""
    steps = DEFAULT_STEPS["float64" if precise else "float32"]
    target = "1e-7" if precise else "1e-4"
    dtype = "float64" if precise else "float32"
    measured = f"{MEASURED_ACCURACY[dtype][0]:.1e}"  # from mothlab.moth.integrate
    return (
        f"state_f from mothlab.moth.simulate ({dtype}, {INTEGRATOR}, {steps} steps per "
        f"20 ms). Specified accuracy: the "
        f"final state's error, divided by that state variable's range over the S3 sample, is "
        f"<= {target} on every trajectory; measured worst over 2000 S3 samples: {measured} "
        f"(see mothlab.moth.integrate; checked by tests/test_moth.py against scipy Radau and "
        f"by `mothlab bench simulate`)."
    )


def _device() -> str:
    try:
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
    raise ValueError(
        f"ranges must be a SamplingRanges, a dict {{name: [min, max]}} or None; got "
        f"{type(ranges).__name__}."
    )


def _as_params(params):
    if params is None:
        return MothParams()
    if isinstance(params, MothParams):
        return params.check()
    if isinstance(params, dict):
        return MothParams(**params)
    raise ValueError(
        f"params must be a MothParams, a dict of its values or None; got {type(params).__name__}."
    )


def _config(n, seed, ranges, params, precise, chunk) -> dict:
    """The fields that determine a dataset's content (compared when resuming)."""
    return {
        "n": n,
        "seed": seed,
        "chunk": chunk,
        "sampling": SAMPLING,
        "precise": bool(precise),
        "dtype": "float64" if precise else "float32",
        "t": [0.0, SPAN],
        "ranges": ranges.to_dict(),
        "params": params.to_dict(),
    }


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key, value in new.items():
        if store.to_json(old.get(key)) != store.to_json(value):
            out.append(f"{key}: store has {old.get(key)!r}, requested {value!r}")
    return out


SAMPLE_BLOCK = 1024
"""Rows ``[b·1024, (b+1)·1024)`` of every dataset are drawn from ``default_rng([seed, b])``: the
content depends on the seed (and ranges, body, precision) only, never on ``chunk`` or ``n``."""

SAMPLING = f"rows in blocks of {SAMPLE_BLOCK} drawn from numpy default_rng([seed, block])"


def sample_rows(ranges: SamplingRanges, seed: int, lo: int, hi: int):
    """The initial states and controls of rows ``[lo, hi)`` of a dataset with ``seed``:
    ``(state0 (hi−lo, 8), controls (hi−lo, 3))`` float64, independent of how rows are chunked."""
    parts0, parts1 = [], []
    for b in range(lo // SAMPLE_BLOCK, -(-hi // SAMPLE_BLOCK)):
        s0, c = ranges.sample(SAMPLE_BLOCK, seed=[seed, b])
        a, z = max(lo - b * SAMPLE_BLOCK, 0), min(hi - b * SAMPLE_BLOCK, SAMPLE_BLOCK)
        parts0.append(s0[a:z])
        parts1.append(c[a:z])
    return np.concatenate(parts0), np.concatenate(parts1)


@dataclass
class DatasetWriter:
    """An open dataset store being written (made by :func:`open_or_resume`).

    ``chunks_done`` of ``n_chunks`` chunks are on disk; :func:`write_chunk` adds the next one and
    :func:`finish` marks the store complete. ``complete`` is True when the store was finished
    already (nothing to write)."""

    path: Path
    group: object
    n: int
    seed: int
    chunk: int
    ranges: SamplingRanges
    params: object
    precise: bool
    n_chunks: int
    chunks_done: int
    timings: dict
    complete: bool = False
    session_chunks: int = 0  # chunks written by this writer (the first one compiles)
    steady_s: float = 0.0  # seconds and rows of the later ones: the steady rate
    steady_n: int = 0

    @property
    def n_done(self) -> int:
        return min(self.chunks_done * self.chunk, self.n)


def open_or_resume(
    path,
    n: int,
    *,
    seed: int = 0,
    ranges=None,
    params=None,
    precise: bool = False,
    chunk: int = 65536,
    resume: bool = True,
    overwrite: bool = False,
) -> DatasetWriter:
    """Validate the settings and create the store at ``path``, or reopen an interrupted one made
    with the same settings (see :func:`generate_dataset` for the parameters)."""
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
            raise ValueError(
                f"{path} already exists; pass overwrite=True (CLI: --overwrite) to "
                "replace it, or resume=True to continue it."
            )
        group, header = store.open_store(path, KIND)
        diff = _differences(header, config)
        if "sampling" not in header:
            if store.is_complete(group):
                # made before rows were drawn in fixed blocks (per chunk): a whole, valid dataset
                diff = [d for d in diff if not d.startswith("sampling:")]
            else:
                diff = [
                    d
                    if not d.startswith("sampling:")
                    else "sampling: started by an older mothlab that drew rows per chunk, which "
                    "this one cannot continue"
                    for d in diff
                ]
        if diff:
            raise ValueError(
                f"The dataset store at {path} was made with different settings, so "
                "it cannot be resumed: " + "; ".join(diff) + ". Use the same "
                "settings, another path, or overwrite=True (CLI: --overwrite)."
            )
        if not store.is_complete(group):
            _check_arrays(path, group, n)
    else:
        header = {
            **config,
            "n_chunks": n_chunks,
            "chunks_done": 0,
            "n_done": 0,
            "accuracy": accuracy_statement(precise),
            "integrator": INTEGRATOR,
            "device": _device(),
            "input_names": list(INPUT_NAMES),
            "output_names": list(OUTPUT_NAMES),
            "columns": {
                "state0": "x xd y yd theta thetad phi phid".split(),
                "controls": ["F", "alpha", "tau"],
                "state_f": "x xd y yd theta thetad phi phid".split(),
            },
            "timings": {"simulate_s": 0.0, "write_s": 0.0, "sessions": 0},
        }
        group = store.create_store(path, KIND, header, overwrite=overwrite)
        dtype_f = "float64" if precise else "float32"
        for name, width in ARRAYS.items():
            # one zarr chunk per generation chunk: a chunk is written whole, in one file
            group.create_array(
                name,
                shape=(n, width),
                chunks=(chunk, width),
                dtype=dtype_f if name == "state_f" else "float64",
                fill_value=float("nan"),
            )
        header = store.read_header(group)
    try:
        timings = dict(header["timings"])
        timings["sessions"] = int(timings.get("sessions", 0)) + 1
        chunks_done = int(header["chunks_done"])
        if not 0 <= chunks_done <= n_chunks:
            raise ValueError(f"chunks_done = {chunks_done} outside [0, {n_chunks}]")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path} has a corrupted dataset header ({err}); it cannot be resumed. "
            "Regenerate it with overwrite=True (CLI: --overwrite)."
        ) from None
    return DatasetWriter(
        path=path,
        group=group,
        n=n,
        seed=seed,
        chunk=chunk,
        ranges=ranges,
        params=params,
        precise=bool(precise),
        n_chunks=n_chunks,
        chunks_done=chunks_done,
        timings=timings,
        complete=store.is_complete(group),
    )


def write_chunk(
    w: DatasetWriter, progress: ProgressFn | None = None, cancel: CancelFn | None = None
) -> None:
    """Simulate and store the next chunk of ``w`` and record it in the header (data first).

    ``progress`` gets events while the chunk is simulated (fractions of this chunk); ``cancel``
    is polled between the simulator's compiled calls (:class:`~mothlab.progress.Cancelled`
    leaves the chunk unwritten and the store resumable)."""
    i = w.chunks_done
    if i >= w.n_chunks:
        raise ValueError(f"{w.path}: all {w.n_chunks} chunks are written already")
    lo, hi = i * w.chunk, min((i + 1) * w.chunk, w.n)
    t0 = time.perf_counter()
    state0, controls = sample_rows(w.ranges, w.seed, lo, hi)

    def sim_progress(ev: Progress) -> None:
        done = lo + int(ev.payload.get("done", 0))
        report(
            progress,
            ev.fraction,
            f"chunk {i + 1}/{w.n_chunks}: {done:,} of {w.n:,} flights",
            n_done=done,
            n=w.n,
        )

    state_f = moth.simulate(
        state0,
        controls,
        w.params,
        t=[0.0, SPAN],
        precise=w.precise,
        progress=None if progress is None else sim_progress,
        cancel=cancel,
    )[:, -1]
    t1 = time.perf_counter()
    if not np.all(np.isfinite(state_f)):
        bad = int(np.sum(~np.all(np.isfinite(state_f), axis=1)))
        raise RuntimeError(
            f"{bad} of {hi - lo} simulated flights in chunk {i} ended with "
            "NaN/inf states; the store was not marked done. This is a bug in "
            "the integrator or the ranges are outside what it handles."
        )
    g = w.group
    g["state0"][lo:hi] = state0
    g["controls"][lo:hi] = controls
    g["state_f"][lo:hi] = state_f
    t2 = time.perf_counter()
    tm = w.timings
    tm["simulate_s"] = tm["simulate_s"] + (t1 - t0)
    tm["write_s"] = tm["write_s"] + (t2 - t1)
    if w.session_chunks == 0:
        # a session's first chunk includes JIT compilation; later chunks show the steady rate
        tm["first_chunk_s"], tm["first_chunk_n"] = t2 - t0, hi - lo
    else:
        w.steady_s += t2 - t0
        w.steady_n += hi - lo
        tm["steady_trajectories_per_s"] = w.steady_n / w.steady_s if w.steady_s > 0 else None
    w.session_chunks += 1
    # the header says a chunk is done only after its data is on disk
    # one atomic header write: the chunk's checksums (open_store checks them) and its record
    store.seal_level(
        g,
        f"rows/{lo}-{hi}",
        paths=store.chunk_paths(g, list(ARRAYS), lo, hi),
        chunks_done=i + 1,
        n_done=hi,
        timings=tm,
    )
    w.chunks_done = i + 1


def finish(w: DatasetWriter) -> Dataset:
    """Mark a fully written store complete (timings over all sessions) and open it."""
    if w.chunks_done < w.n_chunks:
        raise ValueError(
            f"{w.path}: {w.chunks_done} of {w.n_chunks} chunks written; write the "
            "rest before finishing"
        )
    if not w.complete:
        total = w.timings["simulate_s"] + w.timings["write_s"]
        # over all sessions, compilation included
        w.timings["trajectories_per_s"] = w.n / total if total > 0 else None
        store.mark_complete(w.group, timings=w.timings)
        w.complete = True
    return open_dataset(w.path)


def generate_dataset(
    path,
    n: int,
    *,
    seed: int = 0,
    ranges=None,
    params=None,
    precise: bool = False,
    chunk: int = 65536,
    progress: ProgressFn | None = None,
    resume: bool = True,
    overwrite: bool = False,
    cancel: CancelFn | None = None,
) -> Dataset:
    """Simulate ``n`` S3 flights and stream them to a zarr store at ``path``; return it opened.

    Parameters
    ----------
    path : str or Path
        Store directory (e.g. ``"train.zarr"``).
    n : int > 0
        Number of trajectories.
    seed : int >= 0
        Rows are drawn in blocks of :data:`SAMPLE_BLOCK` from ``default_rng([seed, block])``,
        so the content depends on the seed, never on ``chunk``.
    ranges : SamplingRanges or dict, optional
        The S3 ranges (default: the paper's).
    params : MothParams or dict, optional
        The body (default: the published S1 set).
    precise : bool
        Simulate in float64 (``state_f`` stored as float64).
    chunk : int > 0
        Trajectories per chunk: the unit of work, of storage and of resumption (a resume needs
        the same chunk; the data would be the same with any).
    progress : :data:`mothlab.progress.ProgressFn`, optional
        Events from the start (opening the store, compiling) and at least once per compiled
        batch, payload ``n_done`` and ``n``; after each chunk is safely stored, an event whose
        payload also has ``stored`` (rows on disk).
    resume : bool
        Continue an interrupted store at ``path`` made with the same settings (an already
        complete one is simply opened). With ``resume=False`` an existing store is an error
        unless ``overwrite``.
    overwrite : bool
        Delete an existing mothlab store at ``path`` and start again.
    cancel : :data:`mothlab.progress.CancelFn`, optional
        Polled between chunks and between the simulator's compiled calls; when it returns True
        generation stops, leaving a resumable store (the chunk in progress is not written), and
        :class:`mothlab.progress.Cancelled` is raised.

    Raises ValueError for bad arguments, a foreign or mismatching store at ``path``;
    RuntimeError if the simulation produced non-finite states (nothing is marked done).
    The parts, for callers that drive the loop themselves: :func:`open_or_resume`,
    :func:`write_chunk`, :func:`finish`.
    """
    report(progress, 0.0, f"dataset {path}: opening")
    w = open_or_resume(
        path,
        n,
        seed=seed,
        ranges=ranges,
        params=params,
        precise=precise,
        chunk=chunk,
        resume=resume,
        overwrite=overwrite,
    )
    if w.complete:
        report(progress, 1.0, f"dataset {w.path}: complete already", n_done=w.n, n=w.n)
        return open_dataset(w.path)
    report(
        progress,
        w.n_done / w.n,
        f"dataset {w.path}: {w.n_done:,} of {w.n:,} flights done; "
        "simulating (the first batch compiles)",
        n_done=w.n_done,
        n=w.n,
    )
    while w.chunks_done < w.n_chunks:
        check_cancel(
            cancel,
            f"dataset generation stopped after {w.n_done} of {w.n} "
            f"trajectories; {w.path} resumes from there",
        )
        lo = w.chunks_done * w.chunk
        hi = min(lo + w.chunk, w.n)
        write_chunk(w, span(progress, lo / w.n, hi / w.n), cancel)
        report(
            progress,
            hi / w.n,
            f"dataset {w.path}: {hi:,} of {w.n:,} flights stored",
            n_done=hi,
            n=w.n,
            stored=hi,
        )
    ds = finish(w)
    report(progress, 1.0, f"dataset {w.path}: {w.n:,} flights", n_done=w.n, n=w.n)
    return ds


def _check_arrays(path, group, n):
    for name, width in ARRAYS.items():
        try:
            arr = group[name]
        except KeyError:
            raise ValueError(
                f"{path} is a corrupted dataset store: array {name!r} is missing."
            ) from None
        if tuple(arr.shape) != (n, width):
            raise ValueError(
                f"{path} is a corrupted dataset store: array {name!r} has shape "
                f"{tuple(arr.shape)}, expected {(n, width)}."
            )


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
            f"chunk={chunk}, ...) with the same settings."
        )
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
        return (
            f"Dataset({str(self.path)!r}, n={self.n}, seed={self.header['seed']}, "
            f"precise={self.header['precise']})"
        )

    def _index(self, idx) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.dtype == bool:
            if arr.shape != (self.n,):
                raise ValueError(f"A boolean index must have shape ({self.n},); got {arr.shape}.")
            return np.flatnonzero(arr)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"idx must be a 1-D array of integer row indices; got dtype "
                f"{arr.dtype}, shape {arr.shape}."
            )
        if arr.size and (arr.min() < 0 or arr.max() >= self.n):
            raise ValueError(
                f"idx must lie in [0, {self.n - 1}]; got values from {arr.min()} to {arr.max()}."
            )
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
        out = [
            a.get_orthogonal_selection((uniq, slice(None)))[inverse]
            for a in (self.state0, self.controls, self.state_f)
        ]
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

    def scalers(
        self, seed: int = 0, test: float = 0.2, val: float = 0.2, block: int | None = None
    ) -> tuple[MinMaxScaler, MinMaxScaler]:
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


def split_indices(
    n: int, seed: int = 0, test: float = 0.2, val: float = 0.2
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
        raise ValueError(
            f"With n = {n}, test = {test} and val = {val} the training split is "
            "empty; use more trajectories or smaller fractions."
        )
    return {
        "train": np.sort(perm[n_test + n_val :]).astype(np.int64),
        "val": np.sort(perm[n_test : n_test + n_val]).astype(np.int64),
        "test": np.sort(perm[:n_test]).astype(np.int64),
    }
