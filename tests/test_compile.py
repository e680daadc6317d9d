"""diffkit.compile against the uncompiled engine (every primitive, random expressions, both sides
of guards and kinks, inf and nan) and against independent references (closed forms, SymPy,
central differences); the generated source, the subexpressions it shares, and its errors."""

import math
import re

import numpy as np
import pytest
from cases import ALL, CASES, differentiable_inputs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffkit as dk
from diffkit import ops, symbolic
from diffkit.experiments.catalog import xor_network
from diffkit.numeric import central_difference
from diffkit.tolerance import close

ON_FLOATS = {"sum": {}, "mean": {"axis": None, "keepdims": False}, "max": {}, "logsumexp": {},
             "transpose": {}, "reshape": {"shape": ()}, "broadcast_to": {"shape": ()}}
ARRAYS_ONLY = {"matmul", "take", "untake"}
# A primitive without a VJP (a constant under differentiation) is tested inside a product.
TIMES_X = {"sign": lambda x: ops.sign(x) * x, "heaviside": lambda x: ops.heaviside(x, 0.5) * x,
           "where": lambda x, y: ops.where(x > y, x * y, x - y)}


def _same(compiled, engine, rtol=1e-12):
    """Equal up to rounding, nan equal to nan, and both results float or tuples of floats."""
    flat = lambda out: [out[0], *(out[1] if isinstance(out[1], tuple) else (out[1],))]
    assert type(compiled[1]) is type(engine[1])
    assert all(type(v) is float for v in flat(compiled)), compiled
    assert close(flat(compiled), flat(engine), rtol=rtol, atol=1e-300), (compiled, engine)


def _check_against_engine(f, trace_point, points, argnums):
    compiled = dk.compile(f, *trace_point, argnums=argnums)
    engine = dk.value_and_grad(f, argnums)
    with np.errstate(all="ignore"):
        for point in [trace_point, *points]:
            expected = engine(*point)
            _same(compiled.value_and_grad(*point), expected)
            _same((compiled(*point), compiled.grad(*point)), expected)
    return compiled


def _scalar_case(name, rng):
    """(f, point, argnums) for a primitive applied to floats."""
    prim = ops.PRIMITIVES[name]
    if name in TIMES_X:
        f = TIMES_X[name]
        point = tuple(float(v) for v in rng.uniform(-2, 2, size=2 if name == "where" else 1))
        return f, point, tuple(range(len(point)))
    if name in ON_FLOATS:
        return lambda x: prim(x, **ON_FLOATS[name]), (float(rng.normal()),), (0,)
    args, params = CASES[name].draw(rng)
    return lambda *a: prim(*a, **params), args, tuple(differentiable_inputs(prim))


def _edges(point, name):
    """Points that cross every kink and threshold: zeros of both signs, flipped signs, large
    values (exp overflows), inf and nan."""
    out = []
    for k in range(len(point)):
        for v in (0.0, -0.0, -point[k], 800.0, -800.0, math.inf, math.nan):
            if name == "max" and v != v:
                continue  # max of a float is the identity; the engine's rule (x == x) gives nan
            out.append(point[:k] + (v,) + point[k + 1:])
    return out


def test_every_primitive_is_covered():
    for name in ops.PRIMITIVES:  # a new primitive drawn as arrays must be classified above
        if name not in ARRAYS_ONLY | set(ON_FLOATS) | set(TIMES_X):
            assert all(type(a) is float for a in CASES[name].draw(np.random.default_rng(0))[0])


@pytest.mark.parametrize("name", sorted(set(ALL) - ARRAYS_ONLY))
def test_every_scalar_primitive_matches_the_engine_everywhere(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    f, point, argnums = _scalar_case(name, rng)
    again = _scalar_case(name, rng)[1]
    _check_against_engine(f, point, [again, *_edges(point, name), *_edges(again, name)], argnums)


@pytest.mark.parametrize("name", sorted(n for n in ALL if CASES[n].symbolic and n not in TIMES_X))
def test_every_scalar_primitive_matches_sympy_away_from_the_trace_point(name):
    rng = np.random.default_rng(7 + sum(map(ord, name)))
    f, point, argnums = _scalar_case(name, rng)
    other = _scalar_case(name, rng)[1]
    traced = symbolic.trace(f, *other)
    exact = symbolic.exact_point(traced, other)
    reference = [symbolic.evaluate(g, exact) for g in symbolic.gradient(traced)]
    gradient = dk.compile(f, *point, argnums=argnums).grad(*other)
    assert close(gradient, [reference[k] for k in argnums], rtol=1e-13)


@pytest.mark.parametrize("name", sorted(ARRAYS_ONLY))
def test_array_primitives_are_refused(name):
    args, params = CASES[name].draw(np.random.default_rng(0))
    with pytest.raises(dk.InputError, match="value_and_grad"):
        dk.compile(lambda x: ops.PRIMITIVES[name](x * np.ones(2), **params), 1.0)


def neuron(x, w, b):
    return 1 / (1 + dk.exp(-(w * x + b)))


def test_article_sigmoid_neuron_and_its_closed_form():
    compiled = dk.compile(neuron, 1.0, 0.0, 0.0, argnums=(0, 1, 2))
    assert compiled.value_and_grad(1.0, 0.0, 0.0) == (0.5, (0.0, 0.25, 0.25))
    for x, w, b in [(0.3, -1.2, 0.4), (-2.0, 0.7, 1.5)]:
        s = 1 / (1 + math.exp(-(w * x + b)))
        slope = s * (1 - s)
        assert close(compiled.grad(x, w, b), (slope * w, slope * x, slope), rtol=1e-14)
        assert dk.compile(neuron, 1.0, 0.0, 0.0, argnums=1).grad(x, w, b) == compiled.grad(
            x, w, b)[1]


SAMPLES = ((0.0, 0.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0))


def xor_loss(w1, w2, w3, w4, w5, w6, b1, b2, b3):
    total = 0.0
    for x1, x2, target in SAMPLES:
        total = total + (xor_network(x1, x2, w1, w2, w3, w4, w5, w6, b1, b2, b3) - target) ** 2
    return total


def test_xor_network_loss_against_engine_and_central_differences():
    rng = np.random.default_rng(3)
    start, *others = [tuple(float(v) for v in rng.normal(size=9)) for _ in range(4)]
    argnums = tuple(range(9))
    compiled = _check_against_engine(xor_loss, start, others, argnums)
    for point in others:
        reference = central_difference(xor_loss, point, argnums).value
        assert close(compiled.grad(*point), reference, rtol=1e-8, atol=1e-10)


SYMBOLS = ["x", "y", "z", "x", "y", "z", "0.5", "2", "3e-1", "pi"]
CALLS = ["exp", "sin", "cos", "tanh", "sigmoid", "softplus", "silu", "abs", "relu", "elu",
         "leaky_relu"]


def expressions():
    """Expression text from the grammar of `diffkit verify`, kinks and powers included."""

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(["2", "3", "-1"])).map(lambda t: f"({t[0]})**{t[1]}"),
            inner.map(lambda t: f"(1 + ({t})**2)**y"),
            inner.map(lambda t: f"({t})**y"),  # a negative base with fractional y: nan
            st.tuples(st.sampled_from(CALLS), inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(lambda t: f"log(1 + ({t})**2)"),
            inner.map(lambda t: f"-{t}"),
        )

    return st.recursive(st.sampled_from(SYMBOLS), extend, max_leaves=8)


POINTS = st.lists(st.floats(-2, 2).map(lambda v: round(v, 2)), min_size=3, max_size=3)


@settings(max_examples=300, deadline=None)
@given(expressions(), POINTS, POINTS)
def test_random_expressions_match_the_engine_at_a_second_point(text, first, second):
    try:
        expression = dk.parse(text)
    except dk.ExpressionError:  # constant subexpressions such as (-0.5)**0.5 are refused
        assume(False)
    assume(expression.variables)
    names = expression.variables
    at = lambda values: tuple(dict(zip("xyz", values))[n] for n in names)
    point, other = at(first), at(second)
    _check_against_engine(expression.function, point, [other], tuple(range(len(names))))


def branchy(x, y):
    if x > 0:
        return dk.sin(x) * y
    return x * x * y


@pytest.mark.parametrize("trace_x", [1.0, -1.0])
def test_guards_hold_on_both_sides_of_a_branch(trace_x):
    compiled = dk.compile(branchy, trace_x, 2.0, argnums=(0, 1))
    assert compiled.guards and "raise _GuardFailed" in compiled.source
    for x, y in [(0.5, 3.0), (-0.5, 3.0), (0.0, 1.0), (2.0, -1.0)]:
        closed = (math.cos(x) * y, math.sin(x)) if x > 0 else (2 * x * y, x * x)
        assert close(compiled.grad(x, y), closed, rtol=1e-15)
        _same(compiled.value_and_grad(x, y), dk.value_and_grad(branchy, (0, 1))(x, y))


def test_guards_from_builtins_and_primal_thresholds():
    # builtin max compares boxes; power's rule looks at primal(x) == 0 (made symbolic)
    _check_against_engine(lambda x, y: max(x, y) * y, (1.0, 2.0), [(3.0, 2.0), (2.0, 2.0)],
                          (0, 1))
    power = _check_against_engine(lambda x, y: x**y, (2.0, 3.0), [(0.0, 3.0), (0.0, 0.5)], (0, 1))
    assert power.grad(0.0, 3.0) == (0.0, 0.0) and not power.guards
    assert dk.compile(lambda x, y: x**y, 0.0, 3.0, argnums=1).grad(2.0, 3.0) == 8 * math.log(2)


KINKS = [  # (f, derivative left of 0, at 0, right of 0): the repository's kink convention
    (dk.relu, 0.0, 0.0, 1.0),
    (dk.abs, -1.0, 0.0, 1.0),
    (lambda x: dk.leaky_relu(x, 0.1), 0.1, 0.1, 1.0),
    (lambda x: dk.elu(x, 0.5), None, 0.5, 1.0),
    (lambda x: dk.maximum(x, 0.0), 0.0, 0.5, 1.0),
    (lambda x: dk.maximum(0.0, x), 0.0, 0.5, 1.0),
]


@pytest.mark.parametrize(("f", "left", "at_zero", "right"), KINKS)
@pytest.mark.parametrize("trace_x", [-1.0, 0.0, 1.0])
def test_kinks_follow_the_convention_from_either_side(f, left, at_zero, right, trace_x):
    compiled = _check_against_engine(f, (trace_x,), [(-1.0,), (-0.0,), (0.0,), (1.0,)], 0)
    assert compiled.grad(0.0) == compiled.grad(-0.0) == at_zero
    assert compiled.grad(1.0) == right and left in (None, compiled.grad(-1.0))
    assert not compiled.guards


INF, NAN = math.inf, math.nan
FALLBACKS = [  # (f, x, value, gradient, the functions that fall back to the engine there)
    (dk.log, 0.0, -INF, INF, {"grad"}),  # log's float path gives -inf; its rule's 1.0 / x raises
    (lambda x: 1 / x, 0.0, INF, -INF, {"value", "grad"}),  # 1.0 / x raises in both
    (lambda x: x * dk.sqrt(x), 0.0, 0.0, NAN, {"grad"}),  # sqrt's rule: 0.5 / 0.0 raises
    (lambda x: dk.exp(x) ** 2, 1000.0, INF, INF, set()),  # exp's float path gives inf: no raise
    (lambda x: x**-2, 0.0, INF, -INF, {"value", "grad"}),  # 0.0 ** -2.0 raises
    (lambda x: x**400, 10.0, INF, INF, {"value", "grad"}),  # 10.0 ** 400.0 overflows
]


@pytest.mark.parametrize(("f", "x", "value", "gradient", "engine"), FALLBACKS)
def test_only_python_raising_falls_back_to_the_engine(f, x, value, gradient, engine):
    # The generated code never calls f; the engine does (it traces f again): so the calls of
    # f tell which functions fell back. A primitive's float path returns inf or nan itself.
    calls = []

    def counted(x):
        calls.append(x)
        return f(x)

    compiled = dk.compile(counted, 1.0)
    with np.errstate(all="ignore"):
        for name, expected in (("value", value), ("grad", gradient)):
            calls.clear()
            got = getattr(compiled, name)(x)
            assert bool(calls) == (name in engine), (name, calls)
            assert got == expected or math.isnan(got) and math.isnan(expected), (name, got)
        calls.clear()
        _same(compiled.value_and_grad(x), dk.value_and_grad(f)(x))
        assert bool(calls) == bool(engine)


def _function_source(compiled, name):
    return re.search(rf"def {name}\(.*?(?=\n\n\n|\Z)", compiled.source, re.DOTALL).group()


def test_source_is_readable_and_shares_subexpressions():
    compiled = dk.compile(lambda x: dk.sin(x * x) + dk.cos(x * x), 0.5)
    for name in ("value", "grad", "value_and_grad"):
        body = _function_source(compiled, name)
        assert body.count("x * x") == 1, body
    lines = _function_source(compiled, "value_and_grad").splitlines()
    steps = [line.strip() for line in lines if re.match(r"\s+[vg]\d+ = ", line)]
    assert all(re.fullmatch(r"[vg]\d+ = [^#;]+  # \w+.*", line) for line in steps), steps
    # the rules' sin and cos of x * x are the forward pass's: computed once each
    assert sum("sin(" in line for line in steps) == sum("cos(" in line for line in steps) == 1
    assert any(line.endswith("# negative, vjp of cos") for line in steps), steps
    assert close(compiled.grad(0.7), 2 * 0.7 * (math.cos(0.49) - math.sin(0.49)), rtol=1e-15)


def test_multiplication_by_the_seed_is_folded_and_constants_get_no_cotangent():
    compiled = dk.compile(lambda x, c: dk.sin(x) * 3.0 + c, 1.0, 2.0)
    body = _function_source(compiled, "grad")
    assert "1.0 *" not in body and not re.search(r"\bc\b", body.split("try:")[1]), body
    assert compiled.grad(0.2, 5.0) == math.cos(0.2) * 3.0
    plus_zero = dk.compile(lambda x: (x + 0.0) - 0.0, 1.0)  # -0.0 + 0.0 is +0.0: not folded
    assert math.copysign(1.0, plus_zero(-0.0)) == math.copysign(1.0, -0.0 + 0.0) == 1.0


def test_fractional_power_of_a_negative_base_is_nan_not_complex():
    # Python's (-8.0) ** (1/3) is complex; NumPy's and the engine's is nan. (The engine's rule
    # for d/dx there keeps the real part of a complex number; SymPy's derivative is not real.)
    compiled = dk.compile(lambda x, y: x**y + x**0.5, 4.0, 0.5, argnums=(0, 1))
    value, (dx, dy) = compiled.value_and_grad(-8.0, 1 / 3)
    assert all(type(v) is float and math.isnan(v) for v in (value, dx, dy))
    with np.errstate(all="ignore"):
        engine = dk.value_and_grad(lambda x, y: x**y + x**0.5, (0, 1))(-8.0, 1 / 3)
    assert math.isnan(engine[0]) and math.isnan(engine[1][1])


def test_conventions_match_value_and_grad():
    compiled = dk.compile(lambda x, y, z: x * y, 1.0, 2.0, 3.0, argnums=(0, 2))
    assert compiled.value_and_grad(3, 2.0, np.float64(1.0)) == (6.0, (2.0, 0.0))
    assert dk.compile(lambda x: 2.0, 1.0).value_and_grad(5.0) == (2.0, 0.0)
    assert dk.compile(lambda x: x, 1.0, argnums=(0,)).value_and_grad(4.0) == (4.0, (1.0,))
    assert dk.compile(lambda x: dk.sum(x) + dk.mean(x), 1.0).grad(3.0) == 2.0


def test_nesting_with_the_engine():
    third = dk.compile(dk.grad(dk.grad(lambda x: dk.sin(x) * x)), 0.3)
    x = 0.8
    assert close(third.grad(x), -3 * math.sin(x) - x * math.cos(x), rtol=1e-14)
    compiled = dk.compile(lambda x: dk.sin(x) * x, 0.3)
    assert close(dk.grad(compiled.grad)(x), 2 * math.cos(x) - x * math.sin(x), rtol=1e-14)


def test_unsafe_names_and_user_primitives():
    cube = dk.primitive(lambda x: x**3, name="my cube")
    dk.defvjp(cube, lambda g, ans, x: 3 * g * x**2)

    def f(exp, v1, float):
        return cube(exp) * v1 + dk.exp(float)

    compiled = _check_against_engine(f, (1.0, 2.0, 3.0), [(-1.5, 0.5, 0.0)], (0, 1, 2))
    # v1 would clash with generated names, float with the builtin; exp makes the primitive exp_
    assert "exp, a1, a2 = args" in compiled.source and "exp_(a2)" in compiled.source


@pytest.mark.parametrize(
    ("build", "call", "fragment"),
    [
        (lambda: dk.compile(neuron, 1.0, 0.0, 0.0), (1.0, 0.0), "takes 3 argument.*got 2"),
        (lambda: dk.compile(neuron, 1.0, 0.0, 0.0), (np.ones(2), 0.0, 0.0), "argument 0 is"),
        (lambda: dk.compile(neuron, 1.0, 0.0, 0.0), (1.0, True, 0.0), "argument 1 is a bool"),
        (lambda: dk.compile(neuron, 1.0, "0", 0.0), None, "argument 1 is a str"),
        (lambda: dk.compile(neuron, np.ones(3), 0.0, 0.0), None, "compile takes Python floats"),
        (lambda: dk.compile(neuron, 1.0, 0.0, 0.0, argnums=3), None, "out of range"),
        (lambda: dk.compile(lambda x: x * np.ones(2), 1.0), None, "made an array"),
        (lambda: dk.compile(lambda x: "x", 1.0), None, "return a float"),
    ],
)
def test_clear_errors(build, call, fragment):
    with pytest.raises(dk.InputError, match=fragment) as caught:
        compiled = build()
        for fn in (compiled.value_and_grad, compiled.grad, compiled):
            fn(*call)
    assert "\n" not in str(caught.value)
