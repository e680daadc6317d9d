"""What the studies' plots share: PNGs drawn with matplotlib's Agg backend on bare Figures (no
pyplot state), fixed metadata and one colour per activation. matplotlib is optional and imported
only when a plot is drawn; each study's plots are in diffkit.report.studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# One colour per activation, the same in every plot that shows activations.
COLORS = {
    "sigmoid": "tab:blue", "tanh": "tab:orange", "relu": "tab:red", "leaky_relu": "tab:green",
    "softplus": "tab:purple", "elu": "tab:brown", "silu": "tab:pink",
}
DPI = 110
# Fixed metadata: the same numbers give the same PNG bytes, whatever matplotlib's version.
METADATA = {"Software": None}


def available() -> bool:
    """True when matplotlib can be imported (the `plots` extra is installed).

    Example:
        >>> isinstance(available(), bool)
        True
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def figure(width, height, layout="constrained"):
    """Return a bare matplotlib Figure (Agg backend) of this size in inches, at DPI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def save(fig, out: Path, name: str) -> str:
    """Write `fig` as the PNG `out / name` with fixed metadata; return `name`."""
    fig.savefig(out / name, metadata=METADATA)
    return name


def positive(values):
    """Values for a log axis: zeros (and negatives) become NaN, which matplotlib leaves out."""
    values = np.abs(np.asarray(values, dtype=float))
    return np.where(values > 0, values, np.nan)
