"""Column-wise min–max scaling to [−0.5, 0.5], as in the paper (fitted on the training split).

>>> import numpy as np
>>> s = MinMaxScaler().fit(np.array([[0.0, 5.0], [10.0, 5.0]]))
>>> s.transform(np.array([[0.0, 5.0], [5.0, 5.0], [10.0, 5.0]])).tolist()
[[-0.5, 0.0], [0.0, 0.0], [0.5, 0.0]]
"""

from __future__ import annotations

import numpy as np

from .features import check_array


class MinMaxScaler:
    """Maps each column linearly so that the fitted min → −0.5 and max → +0.5.

    Attributes ``lo`` and ``hi`` (float64, shape ``(n_features,)``) are the fitted column extremes.
    A constant column (``lo == hi``) is only shifted (to 0 at the fitted value), never divided by
    zero. Values outside the fitted range map outside [−0.5, 0.5]; nothing is clipped.
    Results keep the input's float precision (float32 in, float32 out; anything else float64).
    """

    def __init__(self, lo=None, hi=None):
        self.lo = self.hi = None
        if lo is not None or hi is not None:
            lo = check_array("lo", lo, (None,)).astype(np.float64)
            hi = check_array("hi", hi, (len(lo),)).astype(np.float64)
            if np.any(lo > hi):
                j = int(np.argmax(lo > hi))
                raise ValueError(
                    f"Scaler column {j} has lo {lo[j]:g} > hi {hi[j]:g}; lo must not exceed hi."
                )
            self.lo, self.hi = lo, hi

    @property
    def n_features(self) -> int | None:
        return None if self.lo is None else len(self.lo)

    def _need_fit(self):
        if self.lo is None:
            raise ValueError(
                "This MinMaxScaler is not fitted yet; call .fit(training_array) first."
            )

    def fit(self, A) -> MinMaxScaler:
        """Fit the column extremes of ``A`` (m, n_features), m >= 1; returns self."""
        arr = check_array("A", A, (None, None))
        if arr.shape[0] == 0:
            raise ValueError(
                "Cannot fit a scaler on an empty array (0 rows); pass the training split."
            )
        self.lo = arr.min(axis=0).astype(np.float64)
        self.hi = arr.max(axis=0).astype(np.float64)
        return self

    def partial_fit(self, A) -> MinMaxScaler:
        """Widen the fitted extremes with the rows of ``A`` (for fitting chunk by chunk)."""
        arr = check_array("A", A, (None, None))
        if arr.shape[0] == 0:
            return self
        if self.lo is None:
            return self.fit(arr)
        self._check_width(arr)
        self.lo = np.minimum(self.lo, arr.min(axis=0))
        self.hi = np.maximum(self.hi, arr.max(axis=0))
        return self

    def _check_width(self, arr):
        if arr.shape[1] != len(self.lo):
            raise ValueError(
                f"Expected {len(self.lo)} columns (as fitted); got an array of shape {arr.shape}."
            )

    def _offset_span(self):
        span = self.hi - self.lo
        varying = span > 0
        # a constant column has no scale: unit scale and no shift, so it maps to 0, not to NaN
        return np.where(varying, 0.5, 0.0), np.where(varying, span, 1.0)

    def transform(self, A) -> np.ndarray:
        """Scale ``A`` (m, n_features) to the fitted [−0.5, 0.5] box."""
        self._need_fit()
        arr = check_array("A", A, (None, len(self.lo)))
        offset, span = self._offset_span()
        # (A − lo)/span − ½ rather than (A − centre)/span: exact at the fitted ends, even for
        # spans of subnormal size where the centre would round
        return ((arr - self.lo) / span - offset).astype(arr.dtype)

    def inverse_transform(self, A) -> np.ndarray:
        """Undo :meth:`transform`: scaled values (m, n_features) back to physical units."""
        self._need_fit()
        arr = check_array("A", A, (None, len(self.lo)))
        offset, span = self._offset_span()
        return ((arr + offset) * span + self.lo).astype(arr.dtype)

    def to_dict(self) -> dict:
        """JSON-safe description; :meth:`from_dict` restores it exactly."""
        self._need_fit()
        return {
            "type": "MinMaxScaler",
            "range": [-0.5, 0.5],
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> MinMaxScaler:
        if (
            not isinstance(d, dict)
            or d.get("type", "MinMaxScaler") != "MinMaxScaler"
            or "lo" not in d
            or "hi" not in d
        ):
            raise ValueError(
                f"Not a MinMaxScaler description (need keys 'lo' and 'hi'): {str(d)[:200]!r}."
            )
        return cls(d["lo"], d["hi"])

    def __repr__(self) -> str:
        if self.lo is None:
            return "MinMaxScaler(unfitted)"
        return f"MinMaxScaler(n_features={len(self.lo)})"
