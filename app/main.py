"""``panel serve app``: the MothLab dashboard (Panel serves this file for the app/ directory)."""

import traceback

import panel as pn

try:
    from mothlab.ui import MothLab

    MothLab().servable(title="MothLab")
except Exception as err:  # noqa: BLE001 - show the problem in the page, keep the server up
    pn.Column(
        pn.pane.Alert(
            f"MothLab could not start this page: {type(err).__name__}: {err}", alert_type="danger"
        ),
        pn.pane.Str(traceback.format_exc()),
    ).servable(title="MothLab (error)")
