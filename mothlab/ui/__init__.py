"""The MothLab app: one Panel Viewer per tab and :class:`MothLab`, which composes them.

>>> from mothlab.ui import MothLab   # doctest: +SKIP
>>> MothLab()                        # in a notebook cell, or ``.servable()`` in app/main.py
"""

from .app import MothLab

__all__ = ["MothLab"]
