"""The one notion of "close" in diffkit, shared by compare() and the test suite:
|actual - reference| <= atol + rtol * |reference|, elementwise. Equal entries are close (inf to
inf of the same sign), and so are two NaNs (neither has a value); NaN is never close to a number."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """Absolute and relative tolerance; `allows(actual, reference)` applies them elementwise.

    Example:
        >>> Tolerance(rtol=1e-8, atol=0.0).allows(1.0 + 1e-9, 1.0)
        True
    """

    rtol: float = 1e-10
    atol: float = 1e-12

    def excess(self, actual, reference) -> float:
        """Return max |actual - reference| / (atol + rtol |reference|): <= 1 means close."""
        a = np.asarray(actual, dtype=float)
        r = np.asarray(reference, dtype=float)
        if a.shape != r.shape and a.size != r.size:
            return np.inf
        a, r = a.reshape(-1), r.reshape(-1)
        if a.size == 0:
            return 0.0
        same = (a == r) | (np.isnan(a) & np.isnan(r))
        with np.errstate(all="ignore"):
            ratio = np.abs(a - r) / (self.atol + self.rtol * np.abs(r))
        ratio = np.where(same, 0.0, ratio)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        return float(np.max(ratio))

    def allows(self, actual, reference) -> bool:
        """True when every entry of actual is within tolerance of reference."""
        return self.excess(actual, reference) <= 1.0


def close(actual, reference, rtol: float = 1e-10, atol: float = 1e-12) -> bool:
    """True when actual is within atol + rtol * |reference| of reference, entry by entry.

    Example:
        >>> close(0.25000000000001, 0.25)
        True
    """
    return Tolerance(rtol=rtol, atol=atol).allows(actual, reference)
