"""MothLab: the whole app, one tab per part of the story."""

from __future__ import annotations

import panel as pn
import param

from .common import configure_panel, enable_compile_cache, pin_local_dist


class MothLab(pn.viewable.Viewer):
    """Flight, Train & prune, Sparsity explorer and Motifs in one page.

    >>> lab = MothLab()   # doctest: +SKIP
    """

    active = param.Integer(default=0, bounds=(0, 3), doc="Index of the tab shown.")

    def __init__(self, **params):
        configure_panel()
        pin_local_dist()
        enable_compile_cache()
        super().__init__(**params)
        from .explorer import ExplorerView
        from .flight import FlightView
        from .motifs import MotifsView
        from .train import TrainView

        self.flight = FlightView()
        self.train = TrainView()
        self.explorer = ExplorerView()
        self.motifs = MotifsView()
        self._tabs = pn.Tabs(("Flight", self.flight), ("Train & prune", self.train),
                             ("Sparsity explorer", self.explorer), ("Motifs", self.motifs),
                             # every tab stays in the document: Panel restyles detached
                             # (dynamic-tab) models with CDN stylesheets, which fails offline
                             dynamic=False,
                             sizing_mode="stretch_width")
        from .fly import FlyView  # the Fly tab (closed-loop flight, issue 11)
        self.fly = FlyView()
        self._tabs.append(("Fly", self.fly))
        self.param.active.bounds = (0, len(self._tabs) - 1)
        self._tabs.link(self, active="active", bidirectional=True)

    def __panel__(self):
        header = pn.pane.HTML(
            "<h1 style='margin:4px 0'>MothLab</h1><div>A hawkmoth's flight controller, learned by "
            "neural networks, pruned until sparse, and read for its wiring motifs.</div>",
            sizing_mode="stretch_width")
        return pn.Column(header, self._tabs, sizing_mode="stretch_width")
