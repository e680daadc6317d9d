"""Guards against a verdict that cheats: every rule of the table perturbed by a relative 1e-6
is caught in exactly its mode, and random expressions at edge points (exact kinks, base 0,
tails at +-700, next to domain edges) raise no false alarm, judged by an independent mpmath
reference at 50 digits."""

import math

import mpmath
import numpy as np
import pytest
from cases import ALL, CASES, differentiable_inputs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import diffkit as dk
from diffkit import ops
from diffkit.core import set_rules

PERTURBATION = 1e-6
DIFFERENTIABLE = [n for n in ALL if differentiable_inputs(ops.PRIMITIVES[n])]


def _scalar_function(name, seed):
    """(f, differentiable args): prim applied at a generic point, summed with fixed weights so
    that every output entry reaches the scalar with its own cotangent."""
    prim = ops.PRIMITIVES[name]
    rng = np.random.default_rng(seed)
    args, params = CASES[name].draw(rng)
    args = [float(a) if np.ndim(a) == 0 and not isinstance(a, (bool, np.bool_)) else a
            for a in args]
    diff = differentiable_inputs(prim)
    out = prim(*args, **params)
    weights = rng.uniform(0.5, 1.5, size=np.shape(out))

    def f(*xs):
        full = list(args)
        for k, x in zip(diff, xs):
            full[k] = x
        return ops.sum(prim(*full, **params) * weights)

    return f, [args[k] for k in diff]


def _perturbed(rule):
    def wrong(*args, **params):
        return rule(*args, **params) * (1 + PERTURBATION)

    return wrong


@pytest.fixture
def swap_rule():
    """Perturb one rule of a built-in primitive for the test; put the rules back afterwards."""
    swapped = []

    def swap(prim, mode, k):
        rules = list(getattr(prim, mode))
        rules[k] = _perturbed(rules[k])
        swapped.append((prim, mode, set_rules(prim, mode, rules)))

    yield swap
    for prim, mode, rules in reversed(swapped):
        set_rules(prim, mode, rules)


def _nonzero_case(name):
    """The first seeded generic point where the derivative is not zero everywhere (a relative
    perturbation of zero is zero: nothing to catch)."""
    for seed in range(20):
        f, xs = _scalar_function(name, seed)
        grads = dk.grad(f, argnums=tuple(range(len(xs))))(*xs)
        if any(np.any(np.asarray(g) != 0) for g in grads):
            return f, xs
    raise AssertionError(f"no point with a nonzero derivative for {name}")


@pytest.mark.parametrize("mode,caught", [("vjp", "reverse"), ("jvp", "forward")])
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_a_rule_perturbed_by_1e_6_is_caught_in_exactly_its_mode(name, mode, caught, swap_rule):
    prim = ops.PRIMITIVES[name]
    f, xs = _nonzero_case(name)
    honest = dk.compare(f, *xs)
    assert honest.agree, f"{name} unperturbed\n{honest.table()}"
    for k in differentiable_inputs(prim):
        swap_rule(prim, mode, k)
    result = dk.compare(f, *xs)
    assert not result.agree, f"{name} {mode} perturbed, not caught\n{result.table()}"
    for method in ("reverse", "forward", "central", "complex_step"):
        m = result.methods[method]
        if method == caught:
            assert m.wrong, f"{name}: {method} not blamed\n{result.table()}"
        else:
            assert m.agree or not m.applicable, f"{name}: {method} blamed\n{result.table()}"


# ---- no false alarm at edge points ----

EDGES = [0.0, 1.0, -1.0, 0.5, -2.0, 1e-300, -1e-300, 1e-8, -1e-8, 20.0, -20.0, 40.0, -40.0,
         700.0, -700.0]


def _mp_functions():
    mp = mpmath

    def sigmoid(x):
        return 1 / (1 + mp.exp(-x))

    return {
        "exp": mp.exp, "log": mp.log, "sqrt": mp.sqrt, "sin": mp.sin, "cos": mp.cos,
        "tan": mp.tan, "tanh": mp.tanh, "sinh": mp.sinh, "cosh": mp.cosh, "abs": abs,
        "sigmoid": sigmoid, "relu": lambda x: x if x > 0 else mp.mpf(0),
        "softplus": lambda x: mp.log(1 + mp.exp(x)), "silu": lambda x: x * sigmoid(x),
        "leaky_relu": lambda x, alpha=0.01: x if x > 0 else alpha * x,
        "elu": lambda x, alpha=1.0: x if x > 0 else alpha * (mp.exp(x) - 1),
    }


def _mp_evaluate(expression, values):
    """The expression's own postfix program run in mpmath: an independent implementation of
    every grammar function; real semantics (a complex result is nan)."""
    functions = _mp_functions()
    arithmetic = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                  "/": lambda a, b: a / b, "**": lambda a, b: a**b}
    stack = []
    for instruction in expression.program:
        kind = instruction[0]
        if kind == "number":
            stack.append(mpmath.mpf(instruction[1]))
        elif kind == "constant":
            stack.append(mpmath.mpf(math.pi if instruction[1] == "pi" else math.e))
        elif kind == "variable":
            stack.append(values[instruction[1]])
        elif kind == "negate":
            stack.append(-stack.pop())
        elif kind == "binary":
            right, left = stack.pop(), stack.pop()
            stack.append(arithmetic[instruction[1]](left, right))
        else:
            arguments = stack[-instruction[2]:]
            del stack[-instruction[2]:]
            stack.append(functions[instruction[1]](*arguments))
        if isinstance(stack[-1], mpmath.mpc):
            if stack[-1].imag != 0:
                return mpmath.mpf("nan")
            stack[-1] = stack[-1].real
    return stack[-1]


def _truth(expression, point):
    """One-sided derivatives (left, right) along each variable at 50 digits, or None where
    mpmath cannot evaluate near the point."""
    names = expression.variables
    out = []
    with mpmath.workdps(50):
        for name in names:
            def along(t, name=name):
                values = {n: mpmath.mpf(point[n]) for n in names}
                values[name] = t
                return _mp_evaluate(expression, values)

            try:
                sides = [mpmath.diff(along, mpmath.mpf(point[name]), direction=d) for d in (-1, 1)]
            except (ZeroDivisionError, ValueError, OverflowError):
                return None
            if any(isinstance(s, mpmath.mpc) or not mpmath.isfinite(s) for s in sides):
                return None
            out.append(tuple(float(s) for s in sides))
    return out


def _right(value, sides):
    low, high = min(sides), max(sides)
    slack = 1e-6 * max(abs(low), abs(high)) + 1e-9
    return math.isfinite(value) and low - slack <= value <= high + slack


FUNCTIONS = ["exp", "sin", "tanh", "sigmoid", "softplus", "silu", "abs", "relu", "elu",
             "leaky_relu", "log", "sqrt", "cosh"]


def edge_expressions():
    leaves = st.sampled_from(["x", "y", "0.5", "2", "x", "y"])

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(["2", "3", "0.5", "y"])).map(
                lambda t: f"({t[0]})**{t[1]}"),
            st.tuples(st.sampled_from(FUNCTIONS), inner).map(lambda t: f"{t[0]}({t[1]})"),
        )

    return st.recursive(leaves, extend, max_leaves=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_expressions(), st.sampled_from(EDGES), st.sampled_from(EDGES))
def test_no_false_alarm_at_edge_points(text, x, y):
    try:
        expression = dk.parse(text)
    except dk.ExpressionError:
        assume(False)
    assume(expression.variables)
    point = {"x": x, "y": y}
    args = [point[n] for n in expression.variables]
    truth = _truth(expression, point)
    assume(truth is not None)
    assume(all(abs(v) < 1e100 for sides in truth for v in sides))
    result = dk.compare(expression, *args)
    ad_right = all(_right(result.methods[m].gradient[k], truth[k])
                   for m in ("reverse", "forward") for k in range(len(truth)))
    if ad_right:
        assert result.agree, f"false alarm: {text} at {point}, truth {truth}\n{result.table()}"
    for name, m in result.methods.items():  # whoever is blamed is really wrong
        for k in m.wrong:
            assert not _right(m.gradient[k], truth[k]), (
                f"{name} blamed but right: {text} at {point}, truth {truth}\n{result.table()}")
