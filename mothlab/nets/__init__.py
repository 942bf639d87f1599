"""Ensembles of masked MLPs, trained and pruned level by level (SCIENCE.md §2–3, §5).

Public API::

    from mothlab.nets import ExperimentConfig, run_experiment, load_experiment
    cfg = ExperimentConfig.preset("tiny")
    exp = run_experiment(cfg, "runs/tiny.zarr")
    exp.test_loss            # (L, n_networks)
    exp.optimal_level()      # (n_networks,) level index, -1 when none
"""

from .config import PAPER_SCHEDULE, PRESETS, ExperimentConfig, zhu_gupta_schedule
from .experiment import PUBLISHED_DEFECTS, Experiment, load_experiment, run_experiment

__all__ = ["ExperimentConfig", "PRESETS", "PAPER_SCHEDULE", "zhu_gupta_schedule",
           "run_experiment", "load_experiment", "Experiment", "PUBLISHED_DEFECTS"]
