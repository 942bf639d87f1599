"""Datasets of simulated hawkmoth flights: S3 sampling, zarr storage, features, scaling, splits.

``moth`` → **``data``** → ``nets``: this layer knows the flight model and nothing of networks.

The dataset functions are imported on first use (PEP 562, like :mod:`mothlab.moth`): they need
the JAX integrator, and the sampling ranges, feature names and scaler are used where JAX is not
(the app's first page).
"""

from importlib import import_module

from .features import (
    INPUT_LABELS,
    INPUT_NAMES,
    INPUT_UNITS,
    OUTPUT_LABELS,
    OUTPUT_NAMES,
    OUTPUT_UNITS,
    features,
)
from .sampling import SamplingRanges
from .scaler import MinMaxScaler

__all__ = [
    "INPUT_NAMES",
    "INPUT_LABELS",
    "INPUT_UNITS",
    "OUTPUT_NAMES",
    "OUTPUT_LABELS",
    "OUTPUT_UNITS",
    "SamplingRanges",
    "features",
    "MinMaxScaler",
    "generate_dataset",
    "open_dataset",
    "Dataset",
    "split_indices",
    "accuracy_statement",
]

#: public names of the dataset module, imported on first use
_LAZY = ("Dataset", "accuracy_statement", "generate_dataset", "open_dataset", "split_indices")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(".dataset", __name__), name)
    elif name == "dataset":
        value = import_module(".dataset", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"dataset"})
