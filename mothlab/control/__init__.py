"""Closed-loop flight with trained networks, the MPC and oracle baselines, and studies.

``moth`` → ``data`` → ``nets`` → ``analysis`` → **``control``**: this layer flies networks of an
experiment in the true simulator, 20 ms at a time, and measures how well they track targets.

>>> from mothlab.control import Hover, make_flights, fly   # doctest: +SKIP
>>> r = fly("oracle", make_flights([Hover()], duration=1.0))   # doctest: +SKIP
>>> r.summary()["rms_error_cm"] < 1e-3   # doctest: +SKIP
True

Names are loaded lazily (PEP 562), so importing the name lists (:mod:`.names`) for a CLI parser
does not import JAX.
"""

from __future__ import annotations

import importlib

from .names import CONTROLLERS, STUDIES, TARGETS

_WHERE = {
    "baselines": ("ANGLE_LENGTH", "mpc_controls", "oracle_controls", "terminal_cost"),
    "loop": (
        "F_MAX",
        "PERIOD",
        "TAU_MAX",
        "UPRIGHT",
        "FlightResult",
        "FlightSet",
        "Networks",
        "Reference",
        "body_constants",
        "default_spans",
        "desired_state",
        "experiment_scalers",
        "fly",
        "fly_one",
        "hover_state",
        "load_networks",
        "make_flights",
        "network_inputs",
    ),
    "targets": (
        "FLOWER_FREQUENCIES",
        "MAX_WAYPOINT_DISTANCE_CM",
        "Flower",
        "Hover",
        "Target",
        "Waypoints",
        "make_target",
        "parse_waypoints",
    ),
    "studies": (
        "StudyResult",
        "sparsity_study",
        "noise_study",
        "body_study",
        "run_study",
        "robustness",
        "group_levels",
        "flight_breakdown_level",
        "loss_breakdown_level",
    ),
}
_MODULE_OF = {name: mod for mod, names in _WHERE.items() for name in names}

__all__ = ["CONTROLLERS", "STUDIES", "TARGETS", *_MODULE_OF]


def __getattr__(name):
    mod = _MODULE_OF.get(name)
    if mod is None:
        raise AttributeError(f"module 'mothlab.control' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
