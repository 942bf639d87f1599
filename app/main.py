"""``panel serve app``: the MothLab dashboard (Panel serves this file for the app/ directory)."""

from mothlab.ui import MothLab

MothLab().servable(title="MothLab")
