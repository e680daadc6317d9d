"""The symbolic reference: tracing into SymPy, exact evaluation, and kink detection."""

import math

import numpy as np
import sympy

import diffkit as dk
from diffkit import symbolic


def test_trace_builds_the_expression_a_person_would_write():
    traced = symbolic.trace(lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b))), 1.0, 0.0, 0.0,
                            names=("x", "w", "b"))
    x, w, b = traced.symbols
    assert sympy.simplify(traced.expr - 1 / (1 + sympy.exp(-(w * x + b)))) == 0


def test_reference_is_exact_beyond_float64():
    traced = symbolic.trace(lambda x: dk.exp(x) - 1 - x, 1e-8)
    point = symbolic.exact_point(traced, (1e-8,))
    (g,) = symbolic.gradient(traced)
    # d/dx (e^x - 1 - x) = e^x - 1 = expm1(1e-8): float64 subtraction would lose 8 digits
    assert symbolic.evaluate(g, point) == math.expm1(1e-8)


def test_array_arguments_become_symbol_arrays():
    traced = symbolic.trace(lambda a: dk.sum(a * a), np.ones((2, 2)), names=("a",))
    assert [str(s) for s in traced.symbols] == ["a[0,0]", "a[0,1]", "a[1,0]", "a[1,1]"]
    point = symbolic.exact_point(traced, (np.array([[1.0, 2.0], [3.0, 4.0]]),))
    values = [symbolic.evaluate(g, point) for g in symbolic.gradient(traced)]
    assert values == [2.0, 4.0, 6.0, 8.0]
