"""Datasets of simulated hawkmoth flights: S3 sampling, zarr storage, features, scaling, splits.

``moth`` → **``data``** → ``nets``: this layer knows the flight model and nothing of networks.
"""

from .dataset import Dataset, accuracy_statement, generate_dataset, open_dataset, split_indices
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
