"""The verdict at and near switches, judged against mpmath: the complex step refused exactly at a
piecewise op's switch (and only there), no false alarm and no missed error 1 ulp, 1e-300 and
1e-17 from a switch, ties of maximum and max, switches reached through arithmetic, Hessians at
C1 points, the consensus path, infinite derivatives at domain edges, and the case verdicts
agree | kink | disagree at edge points.

The reference is independent of diffkit: each function is written again in mpmath and its
one-sided difference quotients are taken at 1000 digits with exact steps of 1e-400 (1e-350 for
second differences), far below the distance of any point here from its switch."""

import math

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit.cases import Case, evaluate
from diffkit.numeric import central_difference, complex_step, complex_step_hessian

ULP = 5e-324
NEAR = (0.0, ULP, -ULP, 1e-300, -1e-300, 1e-17, -1e-17)
DPS = 1000
STEP = mpmath.mpf(10) ** -400
STEP2 = mpmath.mpf(10) ** -350  # second differences: STEP2**2 still far above 10**-DPS


def m_relu(x):
    return x if x > 0 else mpmath.mpf(0)


def m_leaky(x, alpha):
    return x if x > 0 else alpha * x


def m_elu(x, alpha):
    return x if x > 0 else alpha * mpmath.expm1(x)


def m_sqrt(x):
    return mpmath.sqrt(x) if x >= 0 else mpmath.nan


def one_sided(f, point, k, side, step=STEP):
    """(f(p + side step e_k) - f(p)) / (side step) at DPS digits, as a float; p is exact."""
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(v) for v in point]
        q = list(p)
        q[k] += side * step
        return float((f(*q) - f(*p)) / (side * step))


def interval(f, point, k):
    """(low, high): the one-sided derivatives of f along variable k at point, sorted."""
    left, right = one_sided(f, point, k, -1), one_sided(f, point, k, 1)
    return min(left, right), max(left, right)


def second_one_sided(f, x, side, step=STEP2):
    """One-sided second difference (f(x + 2s) - 2 f(x + s) + f(x)) / s**2, s = side * step."""
    with mpmath.workdps(DPS):
        x, s = mpmath.mpf(x), side * step
        return float((f(x + 2 * s) - 2 * f(x + s) + f(x)) / (s * s))


# (text, mpmath twin): every text has a switch whose argument is exactly 0 at x = 0
UNARY = [
    ("relu(x)", m_relu),
    ("abs(x)", abs),
    ("leaky_relu(x, 0.2)", lambda x: m_leaky(x, mpmath.mpf("0.2"))),
    ("leaky_relu(x, 1)", lambda x: m_leaky(x, 1)),  # x itself: a switch with no kink
    ("leaky_relu(x, 0)", lambda x: m_leaky(x, 0)),
    ("elu(x, 0.5)", lambda x: m_elu(x, mpmath.mpf("0.5"))),
    ("elu(x, 1)", lambda x: m_elu(x, 1)),  # C1 at 0: slope 1 from both sides
    ("elu(x, 0)", lambda x: m_elu(x, 0)),
    ("relu(x) - relu(-x)", lambda x: m_relu(x) - m_relu(-x)),  # x itself: slope 1 at 0
    ("abs(x) - relu(x) - relu(-x)", lambda x: abs(x) - m_relu(x) - m_relu(-x)),  # 0
    ("x*abs(x)", lambda x: x * abs(x)),
    ("relu(x)**2", lambda x: m_relu(x) ** 2),
    ("exp(relu(x)) - relu(x)", lambda x: mpmath.exp(m_relu(x)) - m_relu(x)),
    ("log(1 + relu(x))", lambda x: mpmath.log(1 + m_relu(x))),
    ("sigmoid(abs(x))", lambda x: 1 / (1 + mpmath.exp(-abs(x)))),
]


@pytest.mark.parametrize("x", NEAR)
@pytest.mark.parametrize("text, twin", UNARY, ids=[u[0] for u in UNARY])
def test_complex_step_is_refused_exactly_at_the_switch_and_exact_beside_it(text, twin, x):
    f = dk.parse(text).function
    low, high = interval(twin, (x,), 0)
    result = complex_step(f, (x,))
    if x == 0.0:  # every text switches at 0: one branch's slope would pass for the derivative
        assert math.isnan(result.value[0]) and result.scheme[0] == "none", result.value
        assert "exactly at its switch" in result.reason
        return
    assert low == pytest.approx(high, rel=1e-12, abs=1e-300), "beside the switch f is smooth"
    # a few ulps of the O(1) terms summed (exp(x) - 1 at 1e-17 is 0 in floats)
    assert result.value[0] == pytest.approx(high, rel=1e-12, abs=1e-15), (text, x)


@pytest.mark.parametrize("x", NEAR)
@pytest.mark.parametrize("text, twin", UNARY, ids=[u[0] for u in UNARY])
def test_no_false_alarm_and_no_missed_error_at_and_near_switches(text, twin, x):
    """AD is judged exactly: blamed iff its value lies outside the one-sided interval; a method
    inside the interval (or n/a) is never blamed; the verdict is agree iff AD is right.
    log(1 + relu(x)) at 1e-17 once disagreed: 1 + x is 1 in floats at every step small enough
    to stay off the kink, and central differences claimed 0 +- 1e-21."""
    result = dk.compare(dk.parse(text), x)
    low, high = interval(twin, (x,), 0)
    size = max(abs(low), abs(high), 1.0)
    for name, method in result.methods.items():
        if name == "symbolic" or not method.applicable:
            continue
        value = method.gradient[0]
        inside = low - 1e-9 * size <= value <= high + 1e-9 * size
        if inside or math.isnan(value) and name in ("central", "complex_step"):
            assert not method.wrong, f"false alarm on {name}\n{result.table()}"
        elif name in ("reverse", "forward"):
            assert method.wrong, f"missed: {name} = {value}, not in {(low, high)}\n{result.table()}"
    ad = [result.methods[name].gradient[0] for name in ("reverse", "forward")]
    right = all(low - 1e-9 * size <= value <= high + 1e-9 * size for value in ad)
    assert result.agree == right, result.table()


@pytest.mark.parametrize("x", NEAR + (1e-8, -1e-8))
@pytest.mark.parametrize("text, twin", UNARY, ids=[u[0] for u in UNARY])
def test_central_differences_own_up_to_what_they_cannot_see(text, twin, x):
    """Central differences beside a switch: their value, give or take their own error
    estimate, reaches the one-sided interval (or they say they cannot apply)."""
    result = central_difference(dk.parse(text).function, (x,))
    value, error = result.value[0], result.error[0]
    low, high = interval(twin, (x,), 0)
    if not math.isnan(value):
        assert low - error <= value <= high + error, (value, error, low, high, result.scheme)


def test_the_identity_written_with_two_relus_blames_ad_alone():
    result = dk.compare(dk.parse("relu(x) - relu(-x)"), 0.0)
    assert interval(lambda x: m_relu(x) - m_relu(-x), (0.0,), 0) == (1.0, 1.0)
    assert not result.agree
    assert result.methods["reverse"].wrong and result.methods["forward"].wrong
    assert result.methods["central"].gradient[0] == pytest.approx(1.0, abs=1e-9)
    assert not result.methods["central"].wrong
    cs = result.methods["complex_step"]
    assert not cs.applicable and not cs.wrong and "exactly at its switch" in cs.note


# ---- switches reached through arithmetic ----

ARITHMETIC = [
    # (text, point, mpmath twin, variables whose complex step lands exactly on the switch)
    ("relu(x*y)", (0.0, 2.0), lambda x, y: m_relu(x * y), {0}),
    ("relu(x*y)", (0.0, -3.0), lambda x, y: m_relu(x * y), {0}),
    ("relu(x*y)", (0.0, 0.0), lambda x, y: m_relu(x * y), set()),  # x*y moves to 2nd order
    ("relu(x - y)", (0.1, 0.1), lambda x, y: m_relu(x - y), {0, 1}),
    ("abs(x - x) + y", (0.7, 1.0), lambda x, y: abs(x - x) + y, set()),
    ("relu(x - 0.1)", (0.1,), lambda x: m_relu(x - mpmath.mpf(0.1)), {0}),
    ("relu(x*y) - relu(-x*y)", (0.0, 2.0), lambda x, y: m_relu(x * y) - m_relu(-x * y), {0}),
    ("abs(x)*abs(y)", (0.0, 0.0), lambda x, y: abs(x) * abs(y), {0, 1}),
    ("elu(x*y, 1) + relu(y)", (0.0, 1.5), lambda x, y: m_elu(x * y, 1) + m_relu(y), {0}),
]


@pytest.mark.parametrize("text, point, twin, refused", ARITHMETIC,
                         ids=[f"{a[0]} at {a[1]}" for a in ARITHMETIC])
def test_switches_reached_through_arithmetic(text, point, twin, refused):
    expression = dk.parse(text)
    result = complex_step(expression.function, point, argnums=tuple(range(len(point))))
    values = np.ravel(result.value)
    for k in range(len(point)):
        low, high = interval(twin, point, k)
        if k in refused:
            assert math.isnan(values[k]), (k, values)
        else:  # the step does not reach the switch (its argument keeps imaginary part 0)
            assert low <= values[k] <= high, (k, values[k], low, high)
    verdict = dk.compare(expression, *point)
    reverse = verdict.methods["reverse"]
    for k in range(len(point)):  # AD is blamed exactly where it leaves the one-sided interval
        low, high = interval(twin, point, k)
        assert (k in reverse.wrong) == (not low <= reverse.gradient[k] <= high), verdict.table()
    assert verdict.agree == (not reverse.wrong), verdict.table()


# ---- ties of maximum and max ----

def test_maximum_ties_refuse_the_complex_step_only_when_the_steps_differ():
    both = complex_step(lambda x, y: dk.maximum(x, y), (2.0, 2.0), argnums=(0, 1))
    assert np.all(np.isnan(np.ravel(both.value)))
    same = complex_step(lambda x: dk.maximum(x, x) + dk.maximum(2 * x - x, x), (2.0,))
    assert same.value[0] == 2.0  # both sides move together: the slope of 2x
    assert dk.compare(lambda x: dk.maximum(x, 2 * x - x), 2.0).agree
    # max(x, y) - min(x, y) = |x - y| at a tie: a kink, every value in [-1, 1] along x
    tie = dk.compare(lambda x, y: dk.maximum(x, y) + dk.maximum(-x, -y), 1.5, 1.5)
    twin = lambda x, y: max(x, y) + max(-x, -y)  # noqa: E731
    assert interval(twin, (1.5, 1.5), 0) == (-1.0, 1.0)
    assert tie.agree and tie.status == ("kink", "kink"), tie.table()


@pytest.mark.parametrize("axis", [0, 1, None])
def test_max_along_axes_with_ties_and_nan(axis):
    x = np.array([[3.0, 3.0, 1.0], [3.0, -1.0, 2.0]])
    weights = {0: np.array([1.0, 10.0, 100.0]), 1: np.array([1.0, 10.0]), None: 1.0}[axis]

    def f(a):
        return dk.sum(dk.max(a, axis=axis) * weights)

    result = complex_step(f, (x,))
    value = result.value[0]
    # the exact partials: an entry that alone attains its slice's max moves it one to one (times
    # the slice's weight); an entry below the max does not move it; tied entries have a kink
    top = x == np.max(x, axis=axis, keepdims=True)
    tied = top & (np.sum(top, axis=axis, keepdims=True) > 1)
    expected = np.where(top & ~tied, np.broadcast_to(
        np.expand_dims(weights, axis) if axis is not None else weights, x.shape), 0.0)
    assert np.all(np.isnan(value[tied])) and np.array_equal(value[~tied], expected[~tied])
    assert dk.compare(f, x).agree
    with_nan = x.copy()
    with_nan[0, 2] = math.nan  # a slice holding nan has max nan: no value, no step refused
    assert not math.isfinite(dk.compare(f, with_nan).value)


# ---- Hessians at C1 points and at switches ----

SECOND = [
    ("relu(x)**2", lambda x: m_relu(x) ** 2),
    ("x*abs(x)", lambda x: x * abs(x)),
    ("elu(x, 1)", lambda x: m_elu(x, 1)),
    ("relu(x)**3", lambda x: m_relu(x) ** 3),
    ("relu(x)", m_relu),
    ("relu(x) - relu(-x)", lambda x: m_relu(x) - m_relu(-x)),
]


@pytest.mark.parametrize("text, twin", SECOND, ids=[s[0] for s in SECOND])
def test_second_order_case_verdicts_follow_the_one_sided_derivatives(text, twin):
    """At order 1 a C1 point is 'agree' (one slope); at order 2 its Hessian is a kink whose
    one-sided values differ ('kink'); C2 points stay 'agree'; a kink of f is 'kink' at both
    orders; a proven error 'disagree'."""
    slopes = interval(twin, (0.0,), 0)
    curvatures = sorted(second_one_sided(twin, 0.0, side) for side in (-1, 1))
    first = evaluate(Case("c", text, {"x": 0.0}))
    second = evaluate(Case("c", text, {"x": 0.0}, order=2))
    reverse = first["gradient"]["reverse"]["x"]
    if not slopes[0] - 1e-9 <= reverse <= slopes[1] + 1e-9:
        assert first["verdict"] == second["verdict"] == "disagree"
    elif slopes[0] != pytest.approx(slopes[1], abs=1e-12):
        assert first["verdict"] == second["verdict"] == "kink"
    else:
        assert first["verdict"] == "agree", first["table"]
        differ = curvatures[0] != pytest.approx(curvatures[1], rel=1e-9, abs=1e-9)
        assert second["verdict"] == ("kink" if differ else "agree"), second["table"]


@pytest.mark.parametrize("x", [1e-300, -1e-300, 1e-30, -1e-30])
@pytest.mark.parametrize("text, twin", SECOND[:4], ids=[s[0] for s in SECOND[:4]])
def test_hessians_beside_a_switch(text, twin, x):
    """AD is exact; the complex-step Hessian resolves or says it cannot, never blamed: D_j's
    differences across the kink of D (2d and 0 for relu(x)**2 at 1e-300) once settled on 1 at
    every step. Not asked of numerical Hessians: at 1 ulp every stencil straddles the switch,
    and real second differences cannot tell 1e-300 from 0 (f is the same at every point of
    their stencil): both give the mean of the one-sided values there."""
    result = dk.compare(dk.parse(text), x, order=2)
    low, high = sorted(second_one_sided(twin, x, side) for side in (-1, 1))
    assert low == pytest.approx(high, abs=1e-6)
    for name in ("reverse", "forward"):
        assert result.methods[name].hessian[0, 0] == pytest.approx(high, abs=1e-9)
        assert not result.methods[name].hessian_wrong
    assert not result.methods["complex_step"].hessian_wrong, result.table()
    hess = complex_step_hessian(dk.parse(text).function, (x,))
    value, error = hess.value[0, 0], hess.error[0, 0]
    assert math.isnan(value) or abs(value - high) <= error, (value, error, high)


@pytest.mark.parametrize("text, x, exact", [
    ("sqrt(x)*y", 1e-300, 0.5e150),  # d2/dxdy = 1 / (2 sqrt(x))
    ("log(x)*y", 1e-300, 1e300),  # d2/dxdy = 1 / x
    ("log(x)*y", 1e-17, 1e17),
])
def test_complex_step_hessian_does_not_step_off_the_domain(text, x, exact):
    """x - d < 0 leaves the domain; in complex arithmetic sqrt(-d + ih) is i sqrt(d), whose
    Im / h once gave d2/dxdy = -5.9e25 at x = 1e-300, blamed as a disagreement."""
    f = dk.parse(text).function
    hess = complex_step_hessian(f, (x, 0.5), argnums=(0, 1))
    mixed = hess.value[0, 1]
    assert math.isnan(mixed) or mixed == pytest.approx(exact, rel=1e-6), hess.value
    result = dk.compare(dk.parse(text), x, 0.5, order=2)
    assert not result.methods["complex_step"].hessian_wrong, result.table()
    assert result.agree, result.table()


# ---- infinite derivatives at domain edges ----

def test_nan_is_not_an_infinite_derivative():
    """x**(1/2) written as sqrt(x**3)**(1/3): its slope at 0 grows without bound from the right
    (the left is outside the domain); AD meets 0 * inf there and returns nan, once accepted as
    agreeing with +inf."""
    twin = lambda x: m_sqrt(x**3) ** (mpmath.mpf(1) / 3)  # noqa: E731
    steep = [one_sided(twin, (0.0,), 0, 1, mpmath.mpf(10) ** -k) for k in (40, 80)]
    assert steep[0] > 1e19 and steep[1] > 1e39  # 1 / sqrt(step): +inf
    assert math.isnan(one_sided(twin, (0.0,), 0, -1))
    result = dk.compare(dk.parse("sqrt(x**3)**(1/3)"), 0.0)
    assert result.methods["symbolic"].gradient[0] == math.inf
    assert math.isnan(result.methods["reverse"].gradient[0])
    assert not result.agree and result.methods["reverse"].wrong == (0,), result.table()
    plain = dk.compare(dk.parse("sqrt(x)"), 0.0)  # AD's +inf is that infinity: agree
    assert plain.agree and plain.methods["reverse"].gradient[0] == math.inf


def test_the_wrong_infinity_is_wrong():
    root = dk.primitive(np.sqrt, name="root_wrong_sign", sympy_impl=lambda x: x**0.5)
    dk.defvjp(root, lambda g, ans, x: -g * 0.5 / ans)  # the slope is +0.5 / sqrt(x)
    dk.defjvp(root, lambda t, ans, x: -t * 0.5 / ans)
    assert one_sided(m_sqrt, (0.0,), 0, 1) > 1e199
    result = dk.compare(root, 0.0)
    assert result.methods["reverse"].gradient[0] == -math.inf
    assert result.methods["reverse"].wrong == (0,) and result.methods["forward"].wrong == (0,)


# ---- the consensus path: no reference, the complex step does not vote at a switch ----

def _no_reference(g):
    def f(x):
        if x > 1e9:  # a Python branch on a traced value: no symbolic reference
            return x
        return g(x)

    return f


def test_consensus_at_a_switch_blames_nobody_it_cannot_prove_wrong():
    result = dk.compare(_no_reference(lambda x: dk.relu(x) - dk.relu(-x)), 0.0)
    assert result.reference == "consensus"
    assert not result.methods["complex_step"].applicable
    assert interval(lambda x: m_relu(x) - m_relu(-x), (0.0,), 0) == (1.0, 1.0)
    assert result.methods["central"].gradient[0] == pytest.approx(1.0, abs=1e-9)
    assert not result.methods["central"].wrong  # AD's 0 alone cannot outvote it
    plain = dk.compare(_no_reference(dk.relu), 0.0)  # a kink: AD's 0 is in [0, 1]
    assert plain.agree, plain.table()


# ---- case verdicts at edge points ----

EDGES = [
    # (text, point, verdict): checked against mpmath one-sided derivatives below
    ("relu(x)", {"x": 700.0}, "agree"),
    ("relu(x)", {"x": -700.0}, "agree"),
    ("softplus(x) + elu(x)", {"x": -700.0}, "agree"),
    ("exp(x)", {"x": 700.0}, "agree"),
    ("sqrt(x)", {"x": 0.0}, "agree"),  # +inf, and AD says +inf
    ("x**1.5", {"x": 0.0}, "agree"),
    ("log(1 + x)", {"x": 1e-300}, "agree"),
    ("relu(x)", {"x": 0.0}, "kink"),
    ("abs(x) + y", {"x": 0.0, "y": 1.0}, "kink"),
    ("relu(x*y)", {"x": 0.0, "y": 2.0}, "kink"),
    ("relu(x)**2", {"x": 0.0}, "agree"),
    ("elu(x)", {"x": 0.0}, "agree"),
    ("relu(x)", {"x": 1e-300}, "agree"),
    ("relu(x) - relu(-x)", {"x": 0.0}, "disagree"),
    ("sqrt(x**3)**(1/3)", {"x": 0.0}, "disagree"),
]
M_TWINS = {
    "relu(x)": m_relu, "softplus(x) + elu(x)": lambda x: mpmath.log1p(mpmath.exp(x)) + m_elu(x, 1),
    "exp(x)": mpmath.exp, "sqrt(x)": m_sqrt, "x**1.5": lambda x: m_sqrt(x) ** 3,
    "log(1 + x)": lambda x: mpmath.log(1 + x), "relu(x)**2": lambda x: m_relu(x) ** 2,
    "elu(x)": lambda x: m_elu(x, 1), "relu(x) - relu(-x)": lambda x: m_relu(x) - m_relu(-x),
    "sqrt(x**3)**(1/3)": lambda x: m_sqrt(x**3) ** (mpmath.mpf(1) / 3),
}


@pytest.mark.parametrize("text, at, verdict", EDGES, ids=[f"{e[0]} at {e[1]}" for e in EDGES])
def test_case_verdicts_at_edge_points(text, at, verdict):
    record = evaluate(Case("edge", text, at, expect=verdict))
    assert record["verdict"] == verdict and record["met"], record["table"]
    if text in M_TWINS:  # the verdict's ground: do the one-sided derivatives differ?
        sides = [one_sided(M_TWINS[text], (at["x"],), 0, s) for s in (-1, 1)]
        finite = [s for s in sides if math.isfinite(s)]
        kink = len(finite) == 2 and finite[0] != pytest.approx(finite[1], rel=1e-9, abs=1e-300)
        assert kink == (verdict == "kink") or verdict == "disagree"


@pytest.mark.parametrize("order", [1, 2])
def test_no_error_verdict_where_a_verdict_exists(order):
    texts = ["relu(x)", "abs(x)**y", "elu(x, 0)", "leaky_relu(x, 1)", "sqrt(relu(x))", "x**y",
             "log(abs(x))", "relu(x)/x"]
    for text in texts:
        for x in (0.0, -0.0, ULP, -ULP, 700.0, -700.0):
            at = {"x": x, "y": 0.5} if "y" in text else {"x": x}
            record = evaluate(Case("c", text, at, order=order))
            assert record["verdict"] in ("agree", "kink", "disagree"), (text, x, record["errors"])
