"""One test case per registered primitive: how to draw valid inputs and static parameters.

Every primitive in diffkit.ops.PRIMITIVES must have an entry here (a test checks it), so a new
operation is exercised by the whole rule suite the moment it is registered.
"""

from dataclasses import dataclass, field

import numpy as np

from diffkit import ops


@dataclass(frozen=True)
class Case:
    """Inputs for one primitive: `draw(rng)` returns (args, params); `symbolic` marks rules
    that can be checked against sympy.diff on scalar symbols."""

    draw: object
    symbolic: bool = True
    domain: tuple = (-2.0, 2.0)
    extra: dict = field(default_factory=dict)


def _away_from_zero(rng, shape=()):
    x = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return float(x) if shape == () else x


def _unary(low=-2.0, high=2.0, kink=False):
    def draw(rng, shape=()):
        if kink:
            return (_away_from_zero(rng, shape),), {}
        x = rng.uniform(low, high, size=shape)
        return (float(x) if shape == () else x,), {}

    return draw


def _binary(low=-2.0, high=2.0, separated=False):
    def draw(rng, shape=()):
        x = rng.uniform(low, high, size=shape)
        y = rng.uniform(low, high, size=shape)
        if separated:  # keep x != y so that maximum is differentiable
            y = x + _away_from_zero(rng, shape)
        return tuple(float(v) if shape == () else v for v in (x, y)), {}

    return draw


def _alpha(rng, shape=()):
    return (_away_from_zero(rng, shape), float(rng.uniform(0.05, 0.5))), {}


def _array(shape):
    def draw(rng, _shape=()):
        return (rng.normal(size=shape),), {}

    return draw


CASES = {
    "add": Case(_binary()),
    "subtract": Case(_binary()),
    "multiply": Case(_binary()),
    "divide": Case(_binary(0.5, 2.0)),
    "negative": Case(_unary()),
    "power": Case(_binary(0.5, 2.0)),
    "exp": Case(_unary()),
    "log": Case(_unary(0.2, 3.0)),
    "sqrt": Case(_unary(0.2, 3.0)),
    "sin": Case(_unary()),
    "cos": Case(_unary()),
    "tan": Case(_unary(-1.2, 1.2)),
    "tanh": Case(_unary()),
    "sinh": Case(_unary()),
    "cosh": Case(_unary()),
    "abs": Case(_unary(kink=True)),
    "sign": Case(_unary(kink=True)),
    "heaviside": Case(lambda rng, shape=(): ((_away_from_zero(rng, shape), 0.5), {})),
    "where": Case(
        lambda rng, shape=(): (
            (rng.uniform(size=shape) > 0.5, *(rng.normal(size=shape) for _ in range(2))),
            {},
        ),
        symbolic=False,
    ),
    "maximum": Case(_binary(separated=True)),
    "sigmoid": Case(_unary(-4.0, 4.0)),
    "relu": Case(_unary(kink=True)),
    "leaky_relu": Case(_alpha),
    "softplus": Case(_unary(-4.0, 4.0)),
    "elu": Case(_alpha),
    "silu": Case(_unary(-4.0, 4.0)),
    "sum": Case(lambda rng, shape=(): ((rng.normal(size=(3, 4)),), {"axis": 1}), False),
    "mean": Case(
        lambda rng, shape=(): ((rng.normal(size=(3, 4)),), {"axis": 0, "keepdims": True}), False
    ),
    "max": Case(
        lambda rng, shape=(): ((rng.permutation(12).reshape(3, 4).astype(float),), {"axis": 1}),
        False,
    ),
    "logsumexp": Case(lambda rng, shape=(): ((rng.normal(size=(3, 4)),), {"axis": -1}), False),
    "matmul": Case(
        lambda rng, shape=(): ((rng.normal(size=(3, 4)), rng.normal(size=(4, 2))), {}), False
    ),
    "reshape": Case(lambda rng, shape=(): ((rng.normal(size=(3, 4)),), {"shape": (2, 6)}), False),
    "transpose": Case(
        lambda rng, shape=(): ((rng.normal(size=(2, 3, 4)),), {"axes": (1, 2, 0)}), False
    ),
    "broadcast_to": Case(
        lambda rng, shape=(): ((rng.normal(size=(3, 1)),), {"shape": (2, 3, 4)}), False
    ),
    "take": Case(
        lambda rng, shape=(): ((rng.normal(size=(5, 3)),), {"index": np.array([0, 2, 2, 4])}),
        False,
    ),
    "untake": Case(
        lambda rng, shape=(): (
            (rng.normal(size=(4, 3)),),
            {"index": np.array([0, 2, 2, 4]), "shape": (5, 3)},
        ),
        False,
    ),
}


def differentiable_inputs(prim):
    """Indices of the inputs that have a VJP rule."""
    return [k for k, rule in enumerate(prim.vjp) if rule is not None]


ALL = sorted(ops.PRIMITIVES)
