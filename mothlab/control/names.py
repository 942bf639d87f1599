"""The control layer's name lists (no JAX here: the CLI's parser reads them instantly)."""

#: Targets by name (the CLI's ``--target`` and the Fly tab's selector read this).
TARGETS = {
    "hover": "hold a point (the start) in still air",
    "flower": "follow a flower oscillating vertically: a sum of sines 0.2–19.9 Hz with equal "
    "velocity amplitude (Bustamante et al. 2022)",
    "waypoints": "fly through user waypoints in order at a cruise speed, then hold the last one",
}

#: Controllers by name.
CONTROLLERS = {
    "net": "a trained network of an experiment (the inverse model)",
    "mpc": "random-shooting model-predictive control on the true model (Bustamante et al. 2022)",
    "oracle": "the forward model solved for the desired pose (Gauss–Newton/LM through the "
    "simulator)",
}

#: Studies by name (``mothlab fly --study``).
STUDIES = {
    "sparsity": "tracking error against the sparsity level (every level, every network)",
    "sensor-noise": "tracking error against noise on the sensed state",
    "actuator-noise": "tracking error against noise on the controls",
    "scale": "tracking error against the body scale s (1.0–1.3)",
    "mass": "tracking error against the abdomen's mass (a moth after feeding)",
}
