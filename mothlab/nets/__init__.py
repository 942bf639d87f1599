"""Ensembles of masked MLPs, trained and pruned level by level (SCIENCE.md §2–3, §5).

Public API::

    from mothlab.nets import ExperimentConfig, run_experiment, load_experiment
    cfg = ExperimentConfig.preset("tiny")
    exp = run_experiment(cfg, "runs/tiny.zarr")
    exp.test_loss            # (L, n_networks)
    exp.optimal_level()      # (n_networks,) level index, -1 when none

The configuration (:mod:`.config`, param only) is imported at once; the JAX parts load on first
use, so ``mothlab --help`` (whose ``train`` flags come from the config) does not import JAX
(measured: 0.4 s for the config against 5.8 s with JAX, on a loaded 2-core machine).
"""

import importlib

from .config import PAPER_SCHEDULE, PRESETS, ExperimentConfig, zhu_gupta_schedule

_LAZY = {
    "run_experiment": "experiment",
    "load_experiment": "experiment",
    "Experiment": "experiment",
    "PUBLISHED_DEFECTS": "experiment",
    "open_run": "experiment",
    "train_level": "experiment",
    "write_level": "experiment",
    "Topology": "pruning",
    "MagnitudePruning": "pruning",
    "register_topology": "pruning",
}

__all__ = ["ExperimentConfig", "PRESETS", "PAPER_SCHEDULE", "zhu_gupta_schedule", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
