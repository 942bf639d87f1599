"""Synthetic training data for tests, importable from any test module as ``synthetic``.

It lives in its own module, not in ``conftest``: the browser tests' ``tests/browser/conftest.py``
is imported under the same module name and would shadow it when those tests run first."""

import numpy as np


def synthetic_splits(n=600, seed=0):
    """Scaled splits {"train", "val", "test"} of a smooth 10 → 7 map (values in [-0.5, 0.5])."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, 10)).astype(np.float32)
    w = rng.normal(0, 0.4, (10, 7)).astype(np.float32)
    w[5] = 0.0  # θ̇₀ carries no information, as in the paper
    y = (0.5 * np.tanh(x @ w)).astype(np.float32)
    a, b = int(0.64 * n), int(0.8 * n)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}
