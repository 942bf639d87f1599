"""Closed-loop flight with trained networks, the MPC and oracle baselines, and studies.

``moth`` → ``data`` → ``nets`` → ``analysis`` → **``control``**: this layer flies networks of an
experiment in the true simulator, 20 ms at a time, and measures how well they track targets.

>>> from mothlab.control import Hover, make_flights, fly   # doctest: +SKIP
>>> r = fly("oracle", make_flights([Hover()], duration=1.0))   # doctest: +SKIP
>>> r.summary()["rms_error_cm"] < 1e-3   # doctest: +SKIP
True
"""

from .baselines import ANGLE_LENGTH, mpc_controls, oracle_controls, terminal_cost
from .loop import (
    CONTROLLERS,
    F_MAX,
    PERIOD,
    TAU_MAX,
    UPRIGHT,
    FlightResult,
    FlightSet,
    Networks,
    Reference,
    body_constants,
    default_spans,
    desired_state,
    experiment_scalers,
    fly,
    fly_one,
    hover_state,
    load_networks,
    make_flights,
    network_inputs,
)
from .targets import (
    FLOWER_FREQUENCIES,
    MAX_WAYPOINT_DISTANCE_CM,
    TARGETS,
    Flower,
    Hover,
    Target,
    Waypoints,
    make_target,
    parse_waypoints,
)

__all__ = ["CONTROLLERS", "TARGETS", "PERIOD", "F_MAX", "TAU_MAX", "UPRIGHT", "ANGLE_LENGTH",
           "FLOWER_FREQUENCIES", "MAX_WAYPOINT_DISTANCE_CM", "Reference", "Networks",
           "FlightSet", "FlightResult", "Target", "Hover", "Flower", "Waypoints", "make_target",
           "parse_waypoints", "load_networks", "experiment_scalers", "make_flights", "fly",
           "fly_one", "hover_state", "body_constants", "default_spans", "desired_state",
           "network_inputs", "mpc_controls", "oracle_controls", "terminal_cost"]
