"""mothlab.data: S3 sampling, features, scaler, splits, resumable dataset stores.

Every simulation here has one trajectory per compiled call (chunk = 1) and the default time grid,
so the whole module compiles the integrator once (the CLI tests share that compilation).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mothlab import store
from mothlab.data import (
    INPUT_LABELS,
    INPUT_NAMES,
    OUTPUT_LABELS,
    OUTPUT_NAMES,
    MinMaxScaler,
    SamplingRanges,
    features,
    generate_dataset,
    open_dataset,
    split_indices,
)
from mothlab.data.dataset import SAMPLE_BLOCK
from mothlab.moth import MothParams, simulate
from mothlab.progress import Cancelled, Progress

N = 10  # trajectories in the shared dataset
SEED = 7


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    events = []
    path = tmp_path_factory.mktemp("data") / "full.zarr"
    d = generate_dataset(path, N, seed=SEED, chunk=1, progress=events.append)
    assert all(isinstance(e, Progress) for e in events)
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0  # from the first moment
    assert [e.payload["stored"] for e in events if "stored" in e.payload] == list(range(1, N + 1))
    fr = [e.fraction for e in events]
    assert fr == sorted(fr)
    return d


# --- sampling -------------------------------------------------------------------------------


def test_names_and_labels():
    assert INPUT_NAMES == (
        "xd0",
        "yd0",
        "phi0",
        "theta0",
        "phid0",
        "thetad0",
        "x_f",
        "y_f",
        "phi_f",
        "theta_f",
    )
    assert OUTPUT_NAMES == ("Fx", "Fy", "tau", "xd_f", "yd_f", "phid_f", "thetad_f")
    assert len(INPUT_LABELS) == 10 and len(OUTPUT_LABELS) == 7


def test_sample_respects_ranges_and_seed():
    r = SamplingRanges()
    s0, u = r.sample(2000, seed=1)
    assert s0.shape == (2000, 8) and u.shape == (2000, 3) and s0.dtype == np.float64
    assert np.all(s0[:, [0, 2]] == 0.0)
    cols = {
        "xd": s0[:, 1],
        "yd": s0[:, 3],
        "theta": s0[:, 4],
        "thetad": s0[:, 5],
        "phi": s0[:, 6],
        "phid": s0[:, 7],
        "F": u[:, 0],
        "alpha": u[:, 1],
        "tau": u[:, 2],
    }
    for name, values in cols.items():
        lo, hi = getattr(r, name)
        assert lo <= values.min() and values.max() <= hi, name
        # uniform: the sample spreads over the range (a wrong column would not)
        assert values.min() < lo + 0.01 * (hi - lo) and values.max() > hi - 0.01 * (hi - lo), name
    assert r.F == (0.0, 44300.0) and r.tau == (-1e5, 1e5) and r.xd == (-1500.0, 1500.0)
    assert r.theta == (0.0, 2 * math.pi) and r.thetad == (-25.0, 25.0)
    again = r.sample(2000, seed=1)
    assert np.array_equal(again[0], s0) and np.array_equal(again[1], u)
    assert not np.array_equal(r.sample(5, seed=2)[0], s0[:5])
    # a chunk's samples depend only on (seed, chunk index)
    assert np.array_equal(r.sample(3, seed=[5, 2])[0], r.sample(3, seed=[5, 2])[0])
    assert not np.array_equal(r.sample(3, seed=[5, 2])[0], r.sample(3, seed=[5, 3])[0])


def test_degenerate_range_fixes_a_value():
    s0, u = SamplingRanges(F=(100.0, 100.0)).sample(5, seed=0)
    assert np.all(u[:, 0] == 100.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"F": (10.0, 1.0)}, r"min 10 > max 1 dyn"),
        ({"F": (-5.0, 1.0)}, r"outside the allowed bounds \[0, 1e\+06\] dyn"),
        ({"xd": (float("nan"), 1.0)}, "finite"),
        ({"tau": (1.0,)}, r"\(min, max\) pair"),
    ],
)
def test_bad_ranges_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SamplingRanges(**kwargs)
    r = SamplingRanges()
    with pytest.raises(ValueError, match=match):
        setattr(r, *next(iter(kwargs.items())))


@pytest.mark.parametrize("n", [0, -3, 2.5, "ten", True])
def test_bad_n_refused(n):
    with pytest.raises(ValueError, match="n must be"):
        SamplingRanges().sample(n, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "x", [], [1, -2]])
def test_bad_seed_refused(seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        SamplingRanges().sample(3, seed=seed)


def test_ranges_dict_round_trip():
    r = SamplingRanges(F=(0.0, 1000.0), alpha=(1.0, 2.0))
    d = json.loads(json.dumps(r.to_dict()))
    assert SamplingRanges.from_dict(d).to_dict() == r.to_dict()
    with pytest.raises(ValueError, match="Unknown sampling range"):
        SamplingRanges.from_dict({"speed": [0, 1]})


# --- features -------------------------------------------------------------------------------


def test_features_match_an_independent_reference():
    rng = np.random.default_rng(0)
    s0, u, sf = rng.normal(size=(5, 8)), rng.normal(size=(5, 3)), rng.normal(size=(5, 8))
    u[:, 0] = np.abs(u[:, 0]) * 1000
    X, Y = features(s0, u, sf)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    names = ("x", "xd", "y", "yd", "theta", "thetad", "phi", "phid")
    init = {n + "0": s0[:, i] for i, n in enumerate(names)}
    fin = {n + "_f": sf[:, i] for i, n in enumerate(names)}
    for j, name in enumerate(INPUT_NAMES):
        np.testing.assert_array_equal(X[:, j], np.float32({**init, **fin}[name]))
    ref = {"Fx": u[:, 0] * np.cos(u[:, 1]), "Fy": u[:, 0] * np.sin(u[:, 1]), "tau": u[:, 2], **fin}
    for j, name in enumerate(OUTPUT_NAMES):
        np.testing.assert_allclose(Y[:, j], ref[name], rtol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [
        (
            (np.zeros((3, 7)), np.zeros((3, 3)), np.zeros((3, 8))),
            r"state0 must have shape \(n, 8\)",
        ),
        ((np.zeros((3, 8)), np.zeros(3), np.zeros((3, 8))), r"controls must have shape \(n, 3\)"),
        ((np.zeros((3, 8)), np.zeros((3, 3)), np.zeros((3, 2, 8))), "state_f must have shape"),
        ((np.zeros((3, 8)), np.zeros((2, 3)), np.zeros((3, 8))), "same number of rows"),
        ((np.full((3, 8), np.nan), np.zeros((3, 3)), np.zeros((3, 8))), r"NaN .*index \(0, 0\)"),
    ],
)
def test_features_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        features(*args)


# --- scaler ---------------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=finite,
    )
)
def test_scaler_round_trip(A):
    s = MinMaxScaler().fit(A)
    Z = s.transform(A)
    assert np.all(np.isfinite(Z))
    assert Z.min() >= -0.5 - 1e-12 and Z.max() <= 0.5 + 1e-12
    span = A.max(axis=0) - A.min(axis=0)
    varying = span > 0
    # each varying column reaches both ends of the box; a constant one sits at 0
    np.testing.assert_allclose(Z.min(axis=0)[varying], -0.5, atol=1e-12)
    np.testing.assert_allclose(Z.max(axis=0)[varying], 0.5, atol=1e-12)
    np.testing.assert_array_equal(Z[:, ~varying], 0.0)
    np.testing.assert_allclose(
        s.inverse_transform(Z), A, rtol=1e-12, atol=1e-9 * max(1.0, np.abs(A).max())
    )
    again = MinMaxScaler.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(again.transform(A), Z)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float32, (6, 3), elements=st.floats(-1e4, 1e4, width=32)))
def test_scaler_float32_round_trip(A):
    s = MinMaxScaler().fit(A)
    Z = s.transform(A)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(
        s.inverse_transform(Z), A, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(A).max()))
    )


def test_scaler_errors():
    with pytest.raises(ValueError, match="not fitted"):
        MinMaxScaler().transform(np.zeros((2, 2)))
    s = MinMaxScaler().fit(np.array([[0.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        s.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        s.transform(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="empty"):
        MinMaxScaler().fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="lo .* > hi"):
        MinMaxScaler.from_dict({"lo": [1.0], "hi": [0.0]})
    with pytest.raises(ValueError, match="Not a MinMaxScaler"):
        MinMaxScaler.from_dict({"mean": [0.0]})
    # values outside the fitted range are not clipped
    assert s.transform(np.array([[2.0, 1.5]])).tolist() == [[1.5, 0.0]]


# --- splits ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(3, 500),
    st.integers(0, 2**32),
    st.sampled_from([0.0, 0.1, 0.2, 0.5]),
    st.sampled_from([0.0, 0.2, 0.25]),
)
def test_splits_partition(n, seed, test, val):
    s = split_indices(n, seed=seed, test=test, val=val)
    allidx = np.concatenate([s["train"], s["val"], s["test"]])
    assert np.array_equal(np.sort(allidx), np.arange(n))  # disjoint and complete
    for v in s.values():
        assert v.dtype == np.int64 and np.all(np.diff(v) > 0)
    assert len(s["test"]) == round(test * n)
    assert len(s["val"]) == round(val * (n - round(test * n)))
    assert all(
        np.array_equal(a, b)
        for a, b in zip(s.values(), split_indices(n, seed=seed, test=test, val=val).values())
    )


def test_paper_split_sizes():
    s = split_indices(1000)
    assert {k: len(v) for k, v in s.items()} == {"train": 640, "val": 160, "test": 200}
    assert not np.array_equal(s["test"], split_indices(1000, seed=1)["test"])
    with pytest.raises(ValueError, match="training split is empty"):
        split_indices(1, test=0.9)
    with pytest.raises(ValueError, match=r"test must be a fraction in \[0, 1\)"):
        split_indices(10, test=1.0)


# --- datasets -------------------------------------------------------------------------------


def test_dataset_pipeline(ds):
    assert ds.n == N and len(ds) == N
    h = ds.header
    assert h["kind"] == "dataset" and h["seed"] == SEED and h["chunk"] == 1
    assert h["precise"] is False and h["complete"] is True and h["chunks_done"] == N
    assert "Radau" in h["accuracy"] and h["schema_version"] == store.SCHEMA_VERSION
    assert h["input_names"] == list(INPUT_NAMES) and h["output_names"] == list(OUTPUT_NAMES)
    assert h["timings"]["simulate_s"] > 0 and h["mothlab_version"]
    assert ds.params.to_dict() == MothParams().to_dict()
    assert ds.ranges.to_dict() == SamplingRanges().to_dict()
    # lazy zarr arrays, read on indexing
    assert not isinstance(ds.state0, np.ndarray) and ds.state0.shape == (N, 8)
    assert ds.state_f.dtype == np.float32 and ds.controls.shape == (N, 3)
    # row i is row i of block 0, drawn from (seed, 0) whatever the chunking
    s0, u = SamplingRanges().sample(SAMPLE_BLOCK, seed=[SEED, 0])
    s0, u = s0[4:5], u[4:5]
    np.testing.assert_array_equal(ds.state0[4:5], s0)
    np.testing.assert_array_equal(ds.controls[4:5], u)
    # state_f is the simulator's answer for those inputs ...
    np.testing.assert_array_equal(ds.state_f[4:5], simulate(s0, u)[:, -1])
    # ... and close to scipy's stiff reference (independent check)
    from mothlab.moth.reference import solve_reference

    ref = solve_reference(s0[0], u[0])[-1]
    scale = np.array([60, 3000, 60, 3000, 2 * np.pi, 400, 2 * np.pi, 400])
    assert np.max(np.abs(ds.state_f[4] - ref) / scale) < 1e-3

    X, Y = ds.features()
    assert X.shape == (N, 10) and Y.shape == (N, 7)
    Xr, Yr = features(ds.state0[:], ds.controls[:], ds.state_f[:])
    np.testing.assert_array_equal(X, Xr)
    idx = np.array([7, 2, 2, 9])
    Xi, Yi = ds.features(idx)
    np.testing.assert_array_equal(Xi, X[idx])
    np.testing.assert_array_equal(Yi, Y[idx])
    mask = np.zeros(N, bool)
    mask[[1, 3]] = True
    np.testing.assert_array_equal(ds.features(mask)[1], Y[[1, 3]])
    with pytest.raises(ValueError, match=r"idx must lie in \[0, 9\]"):
        ds.features(np.array([10]))

    splits = ds.splits(seed=3)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 2, "test": 2}
    xs, ys = ds.scalers(seed=3)
    # fitted on the training rows only: brute force agrees, and test rows may fall outside
    Xt, Yt = ds.features(splits["train"])
    np.testing.assert_array_equal(xs.lo, Xt.min(axis=0))
    np.testing.assert_array_equal(ys.hi, Yt.max(axis=0))
    Z = xs.transform(Xt)
    assert Z.min() >= -0.5 and Z.max() <= 0.5
    assert not np.array_equal(xs.hi, X.max(axis=0)) or not np.array_equal(xs.lo, X.min(axis=0))
    # the dataset reopens from disk with the same content
    again = open_dataset(ds.path)
    np.testing.assert_array_equal(again.state_f[:], ds.state_f[:])


def test_resume_after_interruption_is_bit_identical(ds, tmp_path):
    path = tmp_path / "part.zarr"
    n = 6

    events = []

    def stored():
        return [e.payload["stored"] for e in events if "stored" in e.payload]

    with pytest.raises(Cancelled, match="after 2 of 6"):
        generate_dataset(
            path, n, seed=SEED, chunk=1, progress=events.append, cancel=lambda: len(stored()) >= 2
        )
    group, header = store.open_store(path, "dataset")
    assert header["chunks_done"] == 2 and not store.is_complete(group)
    with pytest.raises(
        ValueError,
        match=r"incomplete.*after 2 of 6.*Resume it with `mothlab "
        r"dataset --n 6 --seed 7 --chunk 1",
    ):
        open_dataset(path)
    # other settings cannot resume it
    with pytest.raises(ValueError, match="seed: store has 7, requested 8"):
        generate_dataset(path, n, seed=SEED + 1, chunk=1)
    with pytest.raises(ValueError, match="already exists"):
        generate_dataset(path, n, seed=SEED, chunk=1, resume=False)
    events.clear()
    done = generate_dataset(path, n, seed=SEED, chunk=1, progress=events.append)
    assert stored() == [3, 4, 5, 6]  # only the missing chunks were computed
    assert done.header["timings"]["sessions"] == 2
    # identical to an uninterrupted run: chunks 0..5 of the shared dataset (same seed, chunk)
    for name in ("state0", "controls", "state_f"):
        np.testing.assert_array_equal(getattr(done, name)[:], getattr(ds, name)[:n])
    # a complete store is simply reopened; overwrite starts afresh
    assert (
        generate_dataset(path, n, seed=SEED, chunk=1).header["completed"]
        == done.header["completed"]
    )
    fresh = generate_dataset(path, 2, seed=SEED, chunk=1, overwrite=True)
    assert fresh.n == 2


def test_crash_inside_simulation_leaves_resumable_store(tmp_path, monkeypatch):
    import mothlab.moth

    real = mothlab.moth.simulate
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mothlab.moth, "simulate", flaky)
    path = tmp_path / "crash.zarr"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(path, 3, seed=1, chunk=1)
    group, header = store.open_store(path, "dataset")
    assert header["chunks_done"] == 1 and header["complete"] is False
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset(path)
    # the unwritten rows are NaN, never zeros that could pass for data
    assert np.isnan(group["state_f"][2]).all()


def test_cancel_between_chunks(ds, tmp_path):
    path = tmp_path / "c.zarr"
    done = []
    with pytest.raises(Cancelled, match="after 3 of 5 trajectories.*resumes"):
        generate_dataset(
            path,
            5,
            seed=SEED,
            chunk=1,
            progress=lambda e: done.append(1) if "stored" in e.payload else None,
            cancel=lambda: len(done) >= 3,
        )
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset(path)
    again = generate_dataset(path, 5, seed=SEED, chunk=1, cancel=lambda: False)
    np.testing.assert_array_equal(again.state_f[:], ds.state_f[:5])


def test_content_does_not_depend_on_chunk_or_n(ds, tmp_path):
    """Issue 14.7: the same seed gives the same flights whatever the chunking (rows are drawn in
    fixed blocks of SAMPLE_BLOCK), and a shorter dataset is a prefix of a longer one."""
    from mothlab.data.dataset import sample_rows

    one = generate_dataset(tmp_path / "one.zarr", N, seed=SEED, chunk=N)
    three = generate_dataset(tmp_path / "three.zarr", N - 3, seed=SEED, chunk=3)
    for name in ("state0", "controls"):
        np.testing.assert_array_equal(getattr(one, name)[:], getattr(ds, name)[:])
        np.testing.assert_array_equal(getattr(three, name)[:], getattr(ds, name)[: N - 3])
    # the simulator plans its steps per batch, so the end states agree to its float32 accuracy
    # (measured: rel. 1.5e-5 at worst), not bit for bit, when the batches differ
    np.testing.assert_allclose(one.state_f[:], ds.state_f[:], rtol=2e-4, atol=1e-4)
    np.testing.assert_allclose(three.state_f[:], ds.state_f[: N - 3], rtol=2e-4, atol=1e-4)
    # rows straddling a block boundary come from both blocks, as if drawn whole
    r = SamplingRanges()
    s_all, c_all = sample_rows(r, 3, 0, 2 * SAMPLE_BLOCK)
    s_mid, c_mid = sample_rows(r, 3, SAMPLE_BLOCK - 2, SAMPLE_BLOCK + 3)
    np.testing.assert_array_equal(s_mid, s_all[SAMPLE_BLOCK - 2 : SAMPLE_BLOCK + 3])
    np.testing.assert_array_equal(c_mid, c_all[SAMPLE_BLOCK - 2 : SAMPLE_BLOCK + 3])


def test_store_from_before_block_sampling(ds, tmp_path):
    """A complete dataset made before rows were drawn in fixed blocks still opens through
    generate_dataset (it is whole); an interrupted one refuses to resume, saying why."""
    import shutil

    old = tmp_path / "old.zarr"
    shutil.copytree(ds.path, old)
    group, header = store.open_store(old, "dataset")
    h = store.read_header(group)
    del h["sampling"]
    group.attrs[store.HEADER_KEY] = h
    assert generate_dataset(old, N, seed=SEED, chunk=1).n == N
    h["complete"] = False
    group.attrs[store.HEADER_KEY] = h
    with pytest.raises(ValueError, match="older mothlab that drew rows per chunk"):
        generate_dataset(old, N, seed=SEED, chunk=1)


def test_nan_from_simulator_is_not_stored_as_done(tmp_path, monkeypatch):
    import mothlab.moth

    monkeypatch.setattr(
        mothlab.moth,
        "simulate",
        lambda s0, u, *a, **k: np.full((len(s0), 2, 8), np.nan, np.float32),
    )
    path = tmp_path / "nan.zarr"
    with pytest.raises(RuntimeError, match="NaN"):
        generate_dataset(path, 2, seed=1, chunk=1)
    with pytest.raises(ValueError, match="incomplete"):
        open_dataset(path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be at least 1"),
        ({"n": -5}, "n must be at least 1"),
        ({"n": 4, "chunk": 0}, "chunk must be at least 1"),
        ({"n": 4, "seed": -1}, "seed must be an integer >= 0"),
        ({"n": 4, "ranges": {"F": [5, 1]}}, "min 5 > max 1"),
        ({"n": 4, "ranges": "wide"}, "ranges must be"),
        ({"n": 4, "params": {"L3": 5.0}}, "L3"),
    ],
)
def test_generate_bad_arguments(tmp_path, kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        generate_dataset(tmp_path / "bad.zarr", n, **kwargs)
    assert not (tmp_path / "bad.zarr").exists()  # nothing half-made


def test_foreign_and_corrupt_dataset_stores(ds, tmp_path):
    import shutil

    import zarr

    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "missing.zarr")
    g = zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w")
    g.create_array("state0", shape=(2, 8), dtype="f8")
    with pytest.raises(ValueError, match="not a mothlab store"):
        open_dataset(tmp_path / "foreign.zarr")
    # generating into a foreign store neither resumes nor deletes it
    with pytest.raises(ValueError, match="not a mothlab store"):
        generate_dataset(tmp_path / "foreign.zarr", 2)
    with pytest.raises(ValueError, match="refusing to delete"):
        generate_dataset(tmp_path / "foreign.zarr", 2, overwrite=True)
    # a dataset opened as an experiment, and an experiment store opened as a dataset
    with pytest.raises(ValueError, match="'dataset' store, not a 'experiment'"):
        store.open_store(ds.path, "experiment")
    store.create_store(tmp_path / "exp.zarr", "experiment", {})
    with pytest.raises(ValueError, match="'experiment' store, not a 'dataset'"):
        open_dataset(tmp_path / "exp.zarr")
    broken = tmp_path / "broken.zarr"
    shutil.copytree(ds.path, broken)
    # a header that lost its progress record cannot be resumed
    h = store.read_header(zarr.open_group(str(broken), mode="r+"))
    del h["chunks_done"]
    h["complete"] = False
    zarr.open_group(str(broken), mode="r+").attrs["mothlab"] = h
    with pytest.raises(ValueError, match="corrupted dataset header"):
        generate_dataset(broken, N, seed=SEED, chunk=1)
    # a missing array, or garbage metadata
    shutil.rmtree(broken / "state_f")
    with pytest.raises(ValueError, match="state_f"):
        generate_dataset(broken, N, seed=SEED, chunk=1)
    h["complete"] = True
    zarr.open_group(str(broken), mode="r+").attrs["mothlab"] = h
    with pytest.raises(ValueError, match="state_f"):
        open_dataset(broken)
    (broken / "zarr.json").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupted"):
        open_dataset(broken)


@pytest.mark.slow
def test_precise_dataset(tmp_path):
    d = generate_dataset(tmp_path / "p.zarr", 2, seed=0, chunk=1, precise=True)
    assert d.state_f.dtype == np.float64 and d.header["dtype"] == "float64"
    assert "1e-7" in d.header["accuracy"]
