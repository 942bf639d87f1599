"""Names, labels and units of the moth's state and controls (plain tuples; imports nothing).

They live apart from the integrator so that a page that only labels its plots (the app's Flight
tab) does not import JAX to get them.
"""

STATE_NAMES = ("x", "xd", "y", "yd", "theta", "thetad", "phi", "phid")
STATE_LABELS = ("x", "ẋ", "y", "ẏ", "θ", "θ̇", "φ", "φ̇")
STATE_UNITS = ("cm", "cm/s", "cm", "cm/s", "rad", "rad/s", "rad", "rad/s")
CONTROL_NAMES = ("F", "alpha", "tau")
CONTROL_LABELS = ("F", "α", "τ")
CONTROL_UNITS = ("dyn", "rad", "dyn·cm")
