"""The one palette of mothlab, in a module that imports nothing.

Okabe & Ito (2008): distinguishable with every common colour-vision deficiency and in grey print.
Every colour in the app and the report comes from here. :mod:`mothlab.plots` re-exports these
names; views that need a colour but no plot (the app's first page) import them from here, since
importing :mod:`mothlab.plots` imports HoloViews (0.85 s, and ``pn.extension`` then loads its
Bokeh and matplotlib plotting: another 2.1 s; measured by the app helper with
PYTHONPROFILEIMPORTTIME in ``panel serve app``, 2 Dec 2026 02:58 UTC, load 4.9).
"""

__all__ = ["PALETTE", "COLORS", "SEQUENTIAL"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: the same colours by name, and the one neutral grey used for "off" things
COLORS = {
    "blue": PALETTE[0],
    "orange": PALETTE[1],
    "green": PALETTE[2],
    "vermillion": PALETTE[3],
    "purple": PALETTE[4],
    "sky": PALETTE[5],
    "yellow": PALETTE[6],
    "black": PALETTE[7],
    "grey": "#999999",
    "light": "#bbbbbb",
}
#: a sequential map for counts (white = nothing left): light-to-dark blue, readable in grey
SEQUENTIAL = "Blues"
