"""Symbolic differentiation in closed form: trace a function written with diffkit ops into one
SymPy expression, differentiate it with sympy.diff, and evaluate it exactly (for display, for
small expressions and the swell study; the reference compare uses is reference.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from diffkit.errors import InputError

DIGITS = 30

@dataclass(frozen=True)
class Traced:
    """A function as a SymPy expression: `expr` in the flat `symbols`, one block per argument
    with the argument's `shapes` (scalars have shape ())."""

    expr: sympy.Expr
    symbols: tuple
    shapes: tuple
    names: tuple


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
