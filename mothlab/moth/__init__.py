"""The two-body hawkmoth flight model: parameters, dynamics, integration, geometry."""

from .integrate import (
    CONTROL_LABELS,
    CONTROL_NAMES,
    CONTROL_UNITS,
    STATE_LABELS,
    STATE_NAMES,
    STATE_UNITS,
    simulate,
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
