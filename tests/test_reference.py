"""The high-precision reference: local SymPy derivatives accumulated along the graph, checked
against SymPy's derivative of the whole expression, closed forms at 50 digits, exact kinks,
and limits where the formula is undefined."""

import math

import mpmath
import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit import reference, symbolic
from diffkit.experiments.catalog import get


def closed_form(f, args, names, order=1):
    """SymPy's derivative of the whole traced expression at the exact point, 50 digits."""
    traced = symbolic.trace(f, *args, names=names)
    point = symbolic.exact_point(traced, args)
    grads = symbolic.gradient(traced)
    g = [sympy.N(e.subs(point), 50) for e in grads]
    if order == 1:
        return g, None
    return g, [[sympy.N(e.subs(point), 50) for e in row] for row in symbolic.hessian(traced, grads)]


CASES = [
    ("neuron", lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b))), (1.0, 0.3, -0.2)),
    ("trig", lambda x, y: dk.sin(x * y) + x**3 / y + dk.tan(x) * dk.cosh(y), (0.8, 1.7)),
    ("softplus", lambda x, y: dk.softplus(x - y) * dk.silu(y) + dk.elu(x, 0.7), (-0.4, 0.9)),
    ("powers", lambda x, y: x**y + dk.sqrt(x) * dk.log(y) ** 2, (1.3, 2.1)),
    ("relu mix", lambda x, y: dk.relu(x) * dk.leaky_relu(y, 0.1) + dk.abs(x - y), (0.7, -0.4)),
    ("max", lambda x, y: dk.maximum(x * x, y) + dk.tanh(x), (0.5, 0.1)),
]


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("name,f,args", CASES, ids=[c[0] for c in CASES])
def test_accumulated_reference_equals_sympy_of_the_whole_expression(name, f, args, order):
    names = tuple(f"v{k}" for k in range(len(args)))
    ref = reference.compute(f, args, names, order)
    expected, hessian = closed_form(f, args, names, order)
    assert ref.digits >= reference.DIGITS
    assert all(s == "exact" for s in ref.status)
    for got, want in zip(ref.gradient, expected):
        assert abs(got - float(want)) <= 1e-15 * abs(float(want)) + 1e-300
    if order == 2:
        for i, row in enumerate(hessian):
            for j, want in enumerate(row):
                assert abs(ref.hessian[i, j] - float(want)) <= 1e-15 * abs(float(want)) + 1e-300


def test_arrays_trace_through_matmul_reductions_and_indexing():
    W = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]])
    x = np.array([1.0, -2.0, 0.5])

    def f(W, x):
        h = dk.tanh(W @ x)
        return dk.sum(h * h) + dk.logsumexp(x) + dk.mean(W.T[1:]) + x[0] * dk.max(W)

    ref = reference.compute(f, (W, x), ("W", "x"))
    expected, _ = closed_form(f, (W, x), ("W", "x"))
    assert np.allclose(ref.gradient, [float(e) for e in expected], rtol=1e-14, atol=0)


def test_the_article_chain_needs_no_closed_form():
    case = get("chain_sigmoid_10")
    ref = reference.compute(case.function, case.point, case.variables, order=2)
    assert ref.digits >= reference.DIGITS
    # an independent forward recurrence in mpmath at 60 digits: y_i = s(w_i y_(i-1)),
    # dC/dw_k = -2 (3 - y_10) * prod_(i > k) s'_i w_i * s'_k y_(k-1)
    with mpmath.workdps(60):
        y = [mpmath.mpf(case.point[0])]
        slopes = []
        for w in case.point[1:]:
            s = 1 / (1 + mpmath.exp(-w * y[-1]))
            y.append(s)
            slopes.append(s * (1 - s))
        outer = -2 * (3 - y[-1])
        expected = []
        for k in range(10):
            d = slopes[k] * y[k]
            for i in range(k + 1, 10):
                d *= slopes[i] * case.point[i + 1]
            expected.append(outer * d)
    assert np.allclose(ref.gradient[1:], [float(e) for e in expected], rtol=1e-15, atol=0)


def test_digits_are_proven_by_two_precisions_and_say_so():
    # exp(x) - 1 at 1e-60 loses everything at 50 digits; the ladder climbs until 30 agree
    ref = reference.compute(lambda x: (dk.exp(x) - 1) / x * x, (1e-60,), ("x",))
    assert ref.digits >= reference.DIGITS
    assert ref.gradient[0] == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("f,x", [
    (lambda x: dk.relu(x), 1e-30),
    (lambda x: dk.abs(x - 1e-25), 0.0),
    (lambda x: dk.leaky_relu(x - 1e-300, 0.1), 0.0),
])
def test_a_switch_near_but_not_at_zero_is_not_a_kink(f, x):
    ref = reference.compute(f, (x,), ("x",))
    assert ref.kinks == () and ref.status == ("exact",)
    # closed form: the derivative on the side the exact argument is on
    assert ref.gradient[0] in (1.0, -1.0, 0.1)
    assert ref.gradient[0] == float(closed_form(f, (x,), ("x",))[0][0])


@pytest.mark.parametrize("f,second", [
    (lambda x: 1e20 * dk.relu(x) ** 2, (0.0, 2e20)),
    (lambda x: 1e40 * dk.abs(x) ** 3, (0.0, 0.0)),
])
def test_c1_functions_are_differentiable_at_their_switch(f, second):
    ref = reference.compute(f, (0.0,), ("x",), order=2)
    (kink,) = ref.kinks
    assert kink.differentiable and ref.status == ("exact",) and ref.gradient[0] == 0.0
    low, high = second
    if low == high:
        assert ref.hessian_status[0][0] == "exact" and ref.hessian[0, 0] == low
    else:
        assert ref.hessian_status[0][0] == "kink"
        assert (ref.hessian_low[0, 0], ref.hessian_high[0, 0]) == (low, high)


def test_a_kink_reports_one_sided_derivatives_per_variable():
    ref = reference.compute(lambda x, w: dk.relu(w * x), (2.0, 0.0), ("x", "w"))
    (kink,) = ref.kinks
    # d/dw relu(w x) = x H(w x): 0 from the left, x = 2 from the right; d/dx: w = 0 both sides
    assert kink.left == (0.0, 0.0) and kink.right == (0.0, 2.0)
    assert ref.status == ("exact", "kink") and (ref.low[1], ref.high[1]) == (0.0, 2.0)


def test_a_mixed_partial_at_a_kink_is_one_judgement_both_ways():
    # f = relu(x) (y - x): f_x(0, y) is 0 from the left and y from the right, so d/dy f_x has
    # one-sided values 0 and 1, as d/dx f_y = relu'(x) has; the row along y alone does not
    # see the switch move and would call its entry exact
    ref = reference.compute(lambda x, y: dk.relu(x) * (y - x), (0.0, 0.0), ("x", "y"), order=2)
    assert ref.hessian_status[0][1] == ref.hessian_status[1][0] == "kink"
    for s, r in ((0, 1), (1, 0)):
        assert (ref.hessian_low[s, r], ref.hessian_high[s, r]) == (0.0, 1.0)
    assert ref.hessian_status[0][0] == "kink"  # f_xx: 0 from the left, -2 from the right
    assert (ref.hessian_low[0, 0], ref.hessian_high[0, 0]) == (-2.0, 0.0)
    assert ref.hessian_status[1][1] == "exact" and ref.hessian[1, 1] == 0.0
    result = dk.compare(lambda x, y: dk.relu(x) * (y - x), 0.0, 0.0, order=2)
    assert result.agree, result.table()  # central differences' symmetric 0.5 is a convention


@pytest.mark.parametrize("f, branch", [
    # the switch's argument has zero gradient and a definite Hessian: it keeps one sign all
    # around the point, so f is one smooth branch there (given here as a SymPy formula)
    (lambda x, y: dk.relu(y * y), lambda x, y: y**2),
    (lambda x, y: 3 * dk.abs(x * x + y * y) + x, lambda x, y: 3 * (x**2 + y**2) + x),
    (lambda x, y: dk.relu(-(x * x) - 2 * y * y) + y, lambda x, y: y),
])
def test_a_switch_that_never_switches_near_the_point_is_its_branch(f, branch):
    x, y = sympy.symbols("x y", real=True)
    expected = sympy.hessian(branch(x, y), (x, y)).subs({x: 0, y: 0})
    ref = reference.compute(f, (0.0, 0.0), ("x", "y"), order=2)
    assert ref.status == ("exact", "exact") and ref.kinks == ()
    assert all(s == "exact" for row in ref.hessian_status for s in row)
    assert ref.hessian.tolist() == [[float(v) for v in row] for row in expected.tolist()]


@pytest.mark.parametrize("f", [
    lambda x, y: dk.relu(x * y),  # switches along both axes: no second derivative
    lambda x, y: dk.relu(y * y - x * x * x),  # semidefinite: switches along y**2 = x**3
])
def test_a_switch_that_may_switch_near_the_point_has_no_hessian(f):
    ref = reference.compute(f, (0.0, 0.0), ("x", "y"), order=2)
    assert any(s == "undefined" for row in ref.hessian_status for s in row)


def test_ad_s_hessian_of_a_branch_that_never_switches_is_judged():
    # relu(y*y) is y*y: its second derivative is 2, where relu'(0) = 0 gives AD 0
    result = dk.compare(lambda y: dk.relu(y * y), 0.0, order=2)
    assert not result.agree
    assert result.methods["reverse"].hessian_wrong == ((0, 0),)
    assert result.methods["central"].agree and result.methods["central"].hessian[0, 0] == (
        pytest.approx(2.0, rel=1e-6))


def test_ties_of_max_are_kinks_and_jumps_have_no_derivative():
    ref = reference.compute(lambda x, y: dk.maximum(x, y), (1.0, 1.0), ("x", "y"))
    assert ref.status == ("kink", "kink")
    assert (ref.kinks[0].left, ref.kinks[0].right) == ((0.0, 0.0), (1.0, 1.0))
    jump = reference.compute(lambda x: dk.where(x > 0, x * x, 1.0), (0.0,), ("x",))
    assert jump.status == ("undefined",)


@pytest.mark.parametrize("f,args,expected", [
    (lambda x, y: x**y, (0.0, 2.0), [0.0, 0.0]),  # d/dy = x^y log x -> 0
    (lambda x: dk.sqrt(x) * dk.sqrt(x), (0.0,), [1.0]),  # inf * 0 in the chain rule
    (lambda x: dk.sqrt(x), (0.0,), [math.inf]),
    (lambda x: dk.sqrt(x) ** 4, (0.0,), [0.0]),  # 4 sqrt(x)^3 / (2 sqrt(x)) -> 0
    # f = 0 on (-inf, 0): its limit stays where relu is 0, however near the switch the point is
    (lambda x: dk.sqrt(dk.relu(x)), (-1e-300,), [0.0]),
    (lambda x: dk.sqrt(dk.relu(x)), (-0.5,), [0.0]),
    (lambda x, y: dk.sqrt(dk.maximum(x, y) - y), (1.0, math.nextafter(1.0, 2.0)), [0.0, 0.0]),
])
def test_where_the_formula_is_undefined_the_reference_is_the_limit(f, args, expected):
    names = tuple(f"v{k}" for k in range(len(args)))
    ref = reference.compute(f, args, names)
    assert list(ref.gradient) == expected
    assert all(s in ("limit", "exact") for s in ref.status)


def test_far_tails_need_no_float_range():
    ref = reference.compute(lambda x: dk.softplus(x) + dk.sigmoid(-x), (800.0,), ("x",))
    with mpmath.workdps(50):
        x = mpmath.mpf(800)
        s = 1 / (1 + mpmath.exp(-x))
        expected = s - s * (1 - s)
    assert ref.gradient[0] == float(expected)


def test_a_function_that_branches_in_python_has_no_reference():
    def f(x):
        return x * x if x > 0 else -x

    with pytest.raises(reference.Unavailable, match="branches"):
        reference.compute(f, (0.5,), ("x",))


def test_a_smooth_point_of_a_piecewise_function_has_no_kink():
    ref = reference.compute(lambda x: dk.relu(x) + dk.abs(x - 1), (0.5,), ("x",))
    assert ref.kinks == () and ref.gradient[0] == 0.0  # 1 - 1


def test_elu_with_alpha_one_is_differentiable_at_zero():
    ref = reference.compute(lambda x: dk.elu(x, 1.0), (0.0,), ("x",))
    assert all(k.differentiable for k in ref.kinks) and ref.gradient[0] == 1.0
