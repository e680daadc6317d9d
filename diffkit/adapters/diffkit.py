"""diffkit itself as an engine under `diffkit conformance`: its primitives on a recorded graph,
differentiated by diffkit's reverse mode (it must conform)."""

from __future__ import annotations

from diffkit import __version__
from diffkit.adapters.lazy import recorded, replay
from diffkit.adapters.lazy import variable as _leaf
from diffkit.conformance import SCALAR_OPS
from diffkit.ops import PRIMITIVES
from diffkit.reverse import grad

NAME = f"diffkit {__version__}"
OPS = {name: recorded(PRIMITIVES[name]) for name in SCALAR_OPS}


def variable(x):
    """A leaf of the recorded graph holding the float x."""
    return _leaf(float(x))


def value(v):
    """The float value of a node."""
    return float(v.value)


def gradients(output, inputs):
    """d output / d input for each input, by diffkit's reverse mode over the replayed graph."""
    argnums = tuple(range(len(inputs)))
    found = grad(replay(output, inputs), argnums)(*(x.value for x in inputs))
    return [float(g) for g in found]
