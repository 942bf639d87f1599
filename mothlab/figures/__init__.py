"""Matplotlib figures that have no HoloViews equivalent (the flight drawn to scale); the plots of
results are HoloViews elements in :mod:`mothlab.plots`."""
