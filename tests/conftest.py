"""Shared fixtures (kept small): a real tiny experiment trained on synthetic in-memory data, and
environment for app tests (experiments folder, JAX compile cache shared with served apps)."""

import os
from pathlib import Path

import numpy as np
import pytest

# one on-disk compile cache for the test process and any `panel serve` it starts: the simulator
# and the tiny training compile once per machine, not once per process
os.environ.setdefault("MOTHLAB_JAX_CACHE",
                      str(Path.home() / ".cache" / "mothlab" / "jax-tests"))


def synthetic_splits(n=600, seed=0):
    """Scaled splits {"train", "val", "test"} of a smooth 10 → 7 map (values in [-0.5, 0.5])."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, 10)).astype(np.float32)
    w = rng.normal(0, 0.4, (10, 7)).astype(np.float32)
    w[5] = 0.0  # θ̇₀ carries no information, as in the paper
    y = (0.5 * np.tanh(x @ w)).astype(np.float32)
    a, b = int(0.64 * n), int(0.8 * n)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """Path of a complete experiment made by the real runner with the "tiny" preset
    (4 networks of 10-8-8-7, three sparsity levels) on synthetic data."""
    from mothlab.nets import ExperimentConfig, run_experiment

    out = tmp_path_factory.mktemp("experiments") / "tiny.zarr"
    run_experiment(ExperimentConfig.preset("tiny"), out, data=synthetic_splits())
    return out
