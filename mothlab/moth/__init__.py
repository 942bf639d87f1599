"""The two-body hawkmoth flight model: parameters, dynamics, integration, geometry.

Lazy (PEP 562): ``from mothlab.moth import MothParams`` imports the parameters and the state
names only; :func:`simulate` and the JAX integrator behind it are imported on first use (JAX
costs ~3 s to import on a 2-core CPU, of which ``ml_dtypes`` 1.4 s: measured with
``python -X importtime`` 2026-12-02 02:52 UTC, load 0.2). The submodules ``integrate``,
``dynamics``, ``geometry`` and ``reference`` are reachable as attributes too.
"""

from importlib import import_module

from .names import (
    CONTROL_LABELS,
    CONTROL_NAMES,
    CONTROL_UNITS,
    STATE_LABELS,
    STATE_NAMES,
    STATE_UNITS,
)
from .params import PRESETS, BodyConstants, MothParams

__all__ = [
    "MothParams",
    "BodyConstants",
    "PRESETS",
    "simulate",
    "STATE_NAMES",
    "STATE_LABELS",
    "STATE_UNITS",
    "CONTROL_NAMES",
    "CONTROL_LABELS",
    "CONTROL_UNITS",
]

#: public names imported on first use, by the submodule that defines them
_LAZY = {"simulate": "integrate"}
_SUBMODULES = ("integrate", "dynamics", "geometry", "reference", "names", "params")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
