"""One test case per registered primitive: how to draw valid inputs and static parameters, at
every shape the primitive allows.

Every primitive in diffkit.ops.PRIMITIVES must have an entry here (a test checks it), so a new
operation is exercised by the whole rule suite the moment it is registered. Points are generic:
piecewise primitives are drawn away from their kinks and max away from ties.
"""

from dataclasses import dataclass

import numpy as np

from diffkit import ops

BROADCAST = "broadcast"  # an elementwise variant whose inputs broadcast against each other
BROADCAST_SHAPES = {2: ((2, 3), (3,)), 3: ((2, 3), (3,), (2, 1))}


@dataclass(frozen=True)
class Case:
    """Inputs for one primitive: `draw(rng, variant)` returns (args, params) for one of
    `variants`, the first being the default (`draw(rng)`). Elementwise variants are input
    shapes (() draws Python floats) or BROADCAST; array variants are names.

    `symbolic`: the default draw is scalar, so the rules can be checked on scalar SymPy
    symbols. `rules_on_symbols`: the rules run on SymPy object arrays; max's do not, as they
    split the cotangent by which entries attain the max, a comparison of values."""

    draw: object
    symbolic: bool = True
    variants: tuple = ((), (2, 3))
    rules_on_symbols: bool = True


def _floats(values, shape):
    return float(values) if shape == () else values


def _shapes(variant, arity):
    return BROADCAST_SHAPES[arity] if variant == BROADCAST else (variant,) * arity


def _away_from_zero(rng, shape=()):
    x = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return _floats(x, shape)


def _unary(low=-2.0, high=2.0, kink=False):
    def draw(rng, shape=()):
        if kink:
            return (_away_from_zero(rng, shape),), {}
        return (_floats(rng.uniform(low, high, size=shape), shape),), {}

    return draw


def _binary(low=-2.0, high=2.0, separated=False):
    def draw(rng, variant=()):
        sx, sy = _shapes(variant, 2)
        x = rng.uniform(low, high, size=sx)
        y = rng.uniform(low, high, size=sy)
        if separated:  # keep x != y entry by entry so that maximum is differentiable
            x = y + _away_from_zero(rng, sx)
        return (_floats(x, sx), _floats(y, sy)), {}

    return draw


def _alpha(rng, shape=()):
    return (_away_from_zero(rng, shape), float(rng.uniform(0.05, 0.5))), {}


def _where(rng, variant=()):
    sc, sx, sy = _shapes(variant, 3)
    condition = rng.uniform(size=sc) > 0.5
    x, y = (_floats(rng.normal(size=s), s) for s in (sx, sy))
    return (bool(condition) if sc == () else condition, x, y), {}


def _elementwise(draw, symbolic=True, broadcasts=False):
    variants = ((), (2, 3), BROADCAST) if broadcasts else ((), (2, 3))
    return Case(draw, symbolic=symbolic, variants=variants)


def _arrays(rules_on_symbols=True, **variants):
    """A case of an array primitive: each keyword is a variant, drawn by `variant(rng)`."""
    names = tuple(variants)

    def draw(rng, variant=names[0]):
        return variants[variant](rng)

    return Case(draw, symbolic=False, variants=names, rules_on_symbols=rules_on_symbols)


def _normal(size, **params):
    """Draw one input of shape `size` (a float for ()); `params` may hold a `shape` of its own."""
    return lambda rng: ((_floats(rng.normal(size=size), size),), params)


def _distinct(size, **params):
    """Entries of shape `size` without ties (max is differentiable there), not on a grid."""
    count = int(np.prod(size))
    return lambda rng: ((
        (rng.permutation(count) + rng.uniform(0.1, 0.9)).reshape(size).astype(float),
    ), params)


CASES = {
    "add": _elementwise(_binary(), broadcasts=True),
    "subtract": _elementwise(_binary(), broadcasts=True),
    "multiply": _elementwise(_binary(), broadcasts=True),
    "divide": _elementwise(_binary(0.5, 2.0), broadcasts=True),
    "negative": _elementwise(_unary()),
    "power": _elementwise(_binary(0.5, 2.0), broadcasts=True),
    "exp": _elementwise(_unary()),
    "log": _elementwise(_unary(0.2, 3.0)),
    "sqrt": _elementwise(_unary(0.2, 3.0)),
    "sin": _elementwise(_unary()),
    "cos": _elementwise(_unary()),
    "tan": _elementwise(_unary(-1.2, 1.2)),
    "tanh": _elementwise(_unary()),
    "sinh": _elementwise(_unary()),
    "cosh": _elementwise(_unary()),
    "abs": _elementwise(_unary(kink=True)),
    "sign": _elementwise(_unary(kink=True)),
    "heaviside": _elementwise(lambda rng, shape=(): ((_away_from_zero(rng, shape), 0.5), {})),
    "where": _elementwise(_where, symbolic=False, broadcasts=True),
    "maximum": _elementwise(_binary(separated=True), broadcasts=True),
    "sigmoid": _elementwise(_unary(-4.0, 4.0)),
    "relu": _elementwise(_unary(kink=True)),
    "leaky_relu": _elementwise(_alpha),
    "softplus": _elementwise(_unary(-4.0, 4.0)),
    "elu": _elementwise(_alpha),
    "silu": _elementwise(_unary(-4.0, 4.0)),
    "sum": _arrays(
        rows=_normal((3, 4), axis=1),
        all=_normal((3, 4)),
        axes_kept=_normal((2, 3, 4), axis=(0, 2), keepdims=True),
        float=_normal(()),
    ),
    "mean": _arrays(
        columns_kept=_normal((3, 4), axis=0, keepdims=True),
        all=_normal((3, 4)),
        axes=_normal((2, 3, 4), axis=(1, 2)),
        float=_normal(()),
    ),
    "max": _arrays(
        rules_on_symbols=False,
        rows=_distinct((3, 4), axis=1),
        all=_distinct((2, 3)),  # small: SymPy's second derivatives of Max grow fast
        axes_kept=_distinct((2, 3, 2), axis=(0, 2), keepdims=True),
        float=_normal(()),
    ),
    "logsumexp": _arrays(
        last_axis=_normal((3, 4), axis=-1),
        all=_normal((3, 4)),
        axes_kept=_normal((2, 3, 4), axis=(0, 2), keepdims=True),
        float=_normal(()),
    ),
    "matmul": _arrays(
        matrix_matrix=lambda rng: ((rng.normal(size=(3, 4)), rng.normal(size=(4, 2))), {}),
        matrix_vector=lambda rng: ((rng.normal(size=(3, 4)), rng.normal(size=4)), {}),
        vector_matrix=lambda rng: ((rng.normal(size=4), rng.normal(size=(4, 2))), {}),
        vector_vector=lambda rng: ((rng.normal(size=4), rng.normal(size=4)), {}),
    ),
    "reshape": _arrays(
        matrix=_normal((3, 4), shape=(2, 6)),
        to_0d=_normal((1, 1), shape=()),
        float=_normal((), shape=(1, 1)),
    ),
    "transpose": _arrays(
        axes=_normal((2, 3, 4), axes=(1, 2, 0)),
        matrix=_normal((3, 4)),
        float=_normal(()),
    ),
    "broadcast_to": _arrays(
        column=_normal((3, 1), shape=(2, 3, 4)),
        row=_normal((3,), shape=(2, 3)),
        float=_normal((), shape=(2, 3)),
    ),
    "take": _arrays(
        rows=_normal((5, 3), index=np.array([0, 2, 2, 4])),
        entry=_normal((5,), index=2),
        slice=_normal((4, 5), index=(slice(1, 3), 2)),
    ),
    "untake": _arrays(
        rows=_normal((4, 3), index=np.array([0, 2, 2, 4]), shape=(5, 3)),
        entry=_normal((), index=2, shape=(5,)),
        slice=_normal((2,), index=(slice(1, 3), 2), shape=(4, 5)),
    ),
}


def differentiable_inputs(prim):
    """Indices of the inputs that have a VJP rule."""
    return [k for k, rule in enumerate(prim.vjp) if rule is not None]


def variant_id(variant):
    """A readable test id for a variant: 'float', '2x3', or its name."""
    if variant == ():
        return "float"
    return "x".join(map(str, variant)) if isinstance(variant, tuple) else variant


ALL = sorted(ops.PRIMITIVES)
