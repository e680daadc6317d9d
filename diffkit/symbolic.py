"""Symbolic differentiation: trace a function written with diffkit ops into SymPy, differentiate
it, and evaluate at >= 30 significant digits: the reference every other method is measured by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from diffkit.errors import InputError

DIGITS = 30

# The SymPy nodes where a derivative can jump, and which of their arguments switches it.
_SWITCHES = (sympy.Abs, sympy.sign, sympy.Heaviside)


@dataclass(frozen=True)
class Traced:
    """A function as a SymPy expression: `expr` in the flat `symbols`, one block per argument
    with the argument's `shapes` (scalars have shape ())."""

    expr: sympy.Expr
    symbols: tuple
    shapes: tuple
    names: tuple


@dataclass(frozen=True)
class Kink:
    """A point where a piecewise node switches: its derivative may jump there.

    `left` and `right` are the one-sided derivatives along each flat variable (tuples of
    floats); where they differ, the function is not differentiable at the point.
    """

    node: str
    left: tuple
    right: tuple

    @property
    def differentiable(self) -> bool:
        return bool(np.allclose(self.left, self.right, rtol=1e-12, atol=1e-15))


def flat_names(names, shapes) -> list[str]:
    """Names of the flat variables: `x` for a scalar, `x[0,1]` for an array entry."""
    out = []
    for name, shape in zip(names, shapes):
        if shape == ():
            out.append(name)
        else:
            out.extend(f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape))
    return out


def trace(f, *args, names=None) -> Traced:
    """Call f on SymPy symbols shaped like args and return the expression it builds.

    Example:
        >>> import diffkit as dk
        >>> trace(lambda x, y: dk.sin(x) * y, 1.0, 2.0, names=("x", "y")).expr
        y*sin(x)
    """
    names = tuple(names) if names is not None else tuple(f"x{k}" for k in range(len(args)))
    if len(names) != len(args):
        raise InputError(f"got {len(names)} names for {len(args)} arguments")
    shapes = tuple(np.shape(a) for a in args)
    flat = [sympy.Symbol(n, real=True) for n in flat_names(names, shapes)]
    inputs, k = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        block = flat[k : k + size]
        inputs.append(block[0] if shape == () else np.array(block, dtype=object).reshape(shape))
        k += size
    expr = f(*inputs)
    if isinstance(expr, np.ndarray):
        if expr.size != 1:
            raise InputError(f"the function returns shape {expr.shape}; a scalar is needed")
        expr = expr.reshape(()).item()
    return Traced(sympy.sympify(expr), tuple(flat), shapes, names)


def gradient(traced: Traced) -> list:
    """Return the symbolic gradient: one expression per flat variable."""
    return [sympy.diff(traced.expr, s) for s in traced.symbols]


def hessian(traced: Traced, grad=None) -> list:
    """Return the symbolic Hessian as a list of rows over the flat variables."""
    grad = gradient(traced) if grad is None else grad
    return [[sympy.diff(g, s) for s in traced.symbols] for g in grad]


def exact_point(traced: Traced, args) -> dict:
    """Map each symbol to the exact rational value of its float64 argument."""
    values = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in args]) if args else []
    return {s: sympy.Rational(float(v)) for s, v in zip(traced.symbols, values)}


def evaluate(expr, point: dict, digits: int = DIGITS) -> float:
    """Evaluate expr exactly at the point, then to `digits` significant digits; return the
    nearest float64 (nan when the value is undefined, +-inf when it is infinite)."""
    value = sympy.sympify(expr).subs(point)
    if value.has(sympy.nan) or value.has(sympy.zoo):
        return float("nan")
    value = sympy.N(value, digits)
    if value.is_real is False or value.has(sympy.I):
        return float("nan")
    try:
        return float(value)
    except TypeError:
        return float("nan")


def _switch_arguments(expr):
    """The arguments whose sign decides a branch: x for Abs(x), a - b for Max(a, b), and
    lhs - rhs for every relational condition of a Piecewise."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, _SWITCHES):
            yield node, node.args[0]
        elif isinstance(node, (sympy.Max, sympy.Min)):
            for a in node.args[1:]:
                yield node, node.args[0] - a
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sympy.core.relational.Relational):
                    yield node, cond.lhs - cond.rhs


def kinks(traced: Traced, args, grad=None, scale: float = 1e-10) -> list[Kink]:
    """Return the kinks at the point: piecewise nodes whose switch is zero within `scale`
    (relative to the point's magnitude), with one-sided derivatives along every variable."""
    point = exact_point(traced, args)
    size = 1 + max((abs(float(v)) for v in point.values()), default=0.0)
    grad = gradient(traced) if grad is None else grad
    found, seen = [], set()
    for node, switch in _switch_arguments(traced.expr):
        if node in seen or not switch.free_symbols:
            continue
        at = evaluate(switch, point)
        if not np.isfinite(at) or abs(at) > scale * size:
            continue
        seen.add(node)
        found.append(Kink(_shorten(f"{switch} = 0 in {node}"), *_one_sided(grad, traced, point)))
    return found


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_OFFSET = sympy.Rational(1, 10**20)


def _one_sided(grad, traced, point, offset=_OFFSET):
    """Derivatives just left and right of the point along each variable, at high precision."""
    left, right = [], []
    for g, s in zip(grad, traced.symbols):
        for side, sign in ((left, -1), (right, 1)):
            moved = dict(point)
            moved[s] = point[s] + sign * offset
            side.append(evaluate(g, moved, digits=DIGITS + 20))
    return tuple(left), tuple(right)
