"""The swell study against formulas: 3 tape entries per logistic step, 2^(n-1) paths, path
counts on hand-made graphs, and Baydin et al.'s published n = 4 derivative."""

import math

import pytest
import sympy

import diffkit as dk
from diffkit.experiments import swell
from diffkit.experiments.catalog import baydin_derivative_l4, logistic_function
from diffkit.tolerance import close


def _paths(f, *args):
    traced = dk.trace(f, *args)
    return swell.tape_paths(traced.entries, traced.output)[traced.output]


def test_path_counts_on_small_graphs():
    assert _paths(lambda x: x * x + x, 1.0) == 3
    assert _paths(lambda x: (x * x) * x, 1.0) == 3
    assert _paths(lambda x: (x + x) * (x + x), 1.0) == 4
    assert _paths(lambda x: (lambda a: a * a)(x * x), 1.0) == 4  # an operand used twice
    assert _paths(lambda x, y: x * y, 1.0, 2.0) == 2
    assert _paths(lambda x: 3.0 * x, 1.0) == 1


@pytest.mark.parametrize("n", [1, 2, 5, 17, 60, 100])
def test_tape_and_paths_follow_their_formulas(n):
    nodes, paths, _ = swell.tape_size(n)
    assert nodes == 1 + 3 * (n - 1)  # 4*l, 1-l, their product per step
    assert paths == 2 ** (n - 1)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_symbolic_derivative_is_the_derivative(n):
    x = sympy.Symbol("x")
    derivative = sympy.diff(logistic_function(n)(x), x)
    value, slope = 0.3, 1.0
    for _ in range(n - 1):
        slope *= 4 * (1 - 2 * value)
        value = 4 * value * (1 - value)
    assert close(float(derivative.subs(x, sympy.Rational(3, 10))), slope, rtol=1e-14)
    raw, after_cse, _ = swell.symbolic_sizes(n)
    assert raw == sympy.count_ops(derivative)
    assert after_cse <= raw


def test_baydin_table_one():
    check = swell.baydin_check()
    assert check["matches"] is True
    assert check["diffkit_max_rel_error"] < 1e-12
    x = sympy.Symbol("x")
    assert sympy.expand(sympy.sympify(check["derivative"]) - baydin_derivative_l4(x)) == 0


def test_quick_run_shows_the_swell():
    result = swell.run(quick=True)
    rows = result["logistic_map"]
    assert [r["n"] for r in rows] == list(range(1, swell.QUICK_N + 1))
    for r in rows:
        assert set(r) >= {"n", "symbolic_ops", "symbolic_ops_cse", "tape_nodes", "paths"}
        assert r["paths"] == r["paths_formula"] == 2 ** (r["n"] - 1)
    raw = [r["symbolic_ops"] for r in rows[3:]]
    cse = [r["symbolic_ops_cse"] for r in rows[3:]]
    # raw grows by more than 2x per step; after cse, growth is far slower than doubling
    assert all(b > 2 * a for a, b in zip(raw, raw[1:]))
    assert cse[-1] < 0.01 * raw[-1]
    assert "timing" in result and all(math.isfinite(t["symbolic_seconds"])
                                      for t in result["timing"]["logistic_map"])


def _count_ops_cases():
    """Expressions that exercise every rule of sympy.count_ops: signs, reciprocals, rationals,
    E, exp, functions, Max, and each scalar primitive's SymPy form and its first two
    derivatives (the kinds of node a swelling derivative is made of)."""
    x, y, z = sympy.symbols("x y z", real=True)
    cases = [-x - y, -x + y, x - y, 1 / x / y, -1 / (3 * x), -3 / x, 2 / (x * y), -x / y - z,
             sympy.Rational(-1, 3), (x + y) ** -1, x ** -2, -x, sympy.E, sympy.exp(-x) / 3,
             sympy.Max(x, y, z), sympy.tanh(-x) / 3, sympy.sqrt(x), sympy.S.One, x]
    scalar = [p for p in dk.ops.PRIMITIVES.values() if p.grammar] + [
        dk.ops.add, dk.ops.subtract, dk.ops.multiply, dk.ops.divide, dk.ops.negative,
        dk.ops.power, dk.ops.maximum]
    for prim in scalar:
        form = prim.sympy_impl(*(x, y)[:prim.arity])  # alpha, where there is one, is y
        cases += [form, sympy.diff(form, x), sympy.diff(form, x, 2)]
    return cases


def test_tree_ops_counts_exactly_what_sympy_count_ops_counts():
    for expr in _count_ops_cases():
        assert swell.tree_ops(expr) == sympy.count_ops(expr), expr
    x = sympy.Symbol("x", real=True)
    for n in range(1, 10):
        derivative = sympy.diff(logistic_function(n)(x), x)
        assert swell.tree_ops(derivative) == sympy.count_ops(derivative), n
        replacements, reduced = sympy.cse(derivative)
        for expr in [e for _, e in replacements] + reduced:
            assert swell.tree_ops(expr) == sympy.count_ops(expr), (n, expr)
