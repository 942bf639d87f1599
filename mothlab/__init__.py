"""mothlab: hawkmoth flight, sparse neural controllers and their wiring motifs.

Layers (imports only point downward): ``moth`` (the flight model) → ``data`` (datasets) →
``nets`` (ensembles, training, pruning, experiments) → ``analysis`` (sparsity, motifs) →
``control``; ``store`` and ``jobs`` serve all of them; ``ui`` (Panel app), ``bench`` and ``cli`` sit
on top.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mothlab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
