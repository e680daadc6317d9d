"""The reference's verdicts where a switch sits at (or a hair from) its switching point, judged
against references independent of diffkit: each function is written again in mpmath and its
one-sided difference quotients (second differences for Hessians) are taken at 1000 digits with
exact steps far below any distance in play; AD's own values are checked against torch float64
where torch is installed.

Switches that never switch near the point (an argument with zero gradient and a definite
Hessian), switches that jump there, nested switches, mixed partials at kinks, limits 1e-300
and 1 ulp from a switch, and sums over vectors."""


import math

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit import reference

DPS = 1000
STEP = mpmath.mpf(10) ** -400
STEP2 = mpmath.mpf(10) ** -300  # second differences: STEP2**2 still far above 10**-DPS


def m_relu(x):
    return x if x > 0 else mpmath.mpf(0)


def one_sided(f, point, k, side, step=STEP):
    """(f(p + side step e_k) - f(p)) / (side step) at DPS digits; p is exact."""
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(v) for v in point]
        q = list(p)
        q[k] += side * step
        return (f(*q) - f(*p)) / (side * step)


def second_one_sided(f, point, k, side, step=STEP2):
    """(f(p + 2s e_k) - 2 f(p + s e_k) + f(p)) / s**2 with s = side * step, as a float."""
    with mpmath.workdps(DPS):
        p = [mpmath.mpf(v) for v in point]
        q1, q2 = list(p), list(p)
        q1[k] += side * step
        q2[k] += 2 * side * step
        return float((f(*q2) - 2 * f(*q1) + f(*p)) / (step * step))


def test_a_switch_that_jumps_where_its_argument_is_definite_has_no_derivative():
    # y*y > 0 is false at y = 0 and true all around it: f is y there and 1 + 2y beside it, a
    # jump. Settling y*y as positive once called the slope 2 (the branch beside the point) and
    # blamed AD's 1 (the branch at it), though no slope exists.
    def twin(x, y):
        return 1 + 2 * y if y * y > 0 else y

    for side in (-1, 1):
        assert abs(one_sided(twin, (0.0, 0.0), 1, side)) > 1e300  # f jumps: no derivative
    ref = reference.compute(lambda x, y: dk.where(y * y > 0, 1 + 2 * y, y), (0.0, 0.0),
                            ("x", "y"))
    assert ref.status == ("exact", "undefined")
    result = dk.compare(lambda x, y: dk.where(y * y > 0, 1 + 2 * y, y), 0.0, 0.0)
    assert result.agree, result.table()


def test_a_continuous_switch_on_a_definite_argument_is_still_settled():
    # where(y*y > 0, y*y, 0) is y*y everywhere: continuous, settled, Hessian 2 judged
    def twin(x, y):
        return y * y if y * y > 0 else mpmath.mpf(0)

    expected = [second_one_sided(twin, (0.0, 0.0), 1, side) for side in (-1, 1)]
    assert expected[0] == pytest.approx(2.0, rel=1e-12) == expected[1]
    ref = reference.compute(lambda x, y: dk.where(y * y > 0, y * y, 0.0), (0.0, 0.0),
                            ("x", "y"), order=2)
    assert ref.hessian_status[1][1] == "exact"
    assert ref.hessian[1, 1] == pytest.approx(expected[1], rel=1e-12)


@pytest.mark.parametrize("text, twin, entry", [
    # the inner switch settles first, then the outer one sees a branch: f is y*y + x
    ("relu(relu(y*y)) + x", lambda x, y: m_relu(m_relu(y * y)) + x, (1, 1)),
    # x is at its kink in relu(x), but it is no switch of x*x + y*y: abs settles all the same
    ("abs(x*x + y*y) + relu(x)", lambda x, y: abs(x * x + y * y) + m_relu(x), (1, 1)),
    ("relu(x) * 0 + leaky_relu(-(y*y), 0.3)", lambda x, y: -mpmath.mpf("0.3") * y * y, (1, 1)),
])
def test_ad_s_hessian_is_judged_where_the_switch_settles_beside_others(text, twin, entry):
    """AD takes relu'(0) = abs'(0) = 0 (leaky: alpha) at the point and misses the curvature
    of y*y; the true second derivative along y exists (equal one-sided second differences)."""
    s, r = entry
    expected = [second_one_sided(twin, (0.0, 0.0), s, side) for side in (-1, 1)]
    assert expected[0] == pytest.approx(expected[1], rel=1e-12)
    result = dk.compare(dk.parse(text), 0.0, 0.0, order=2)
    assert result.hessian_status[s][r] == "exact", result.table()
    reverse = result.methods["reverse"].hessian[s, r]
    assert (reverse == pytest.approx(expected[1], rel=1e-9)) == (
        (s, r) not in result.methods["reverse"].hessian_wrong), result.table()
    assert result.methods["central"].hessian[s, r] == pytest.approx(expected[1], rel=1e-5)
    assert (s, r) not in result.methods["central"].hessian_wrong, result.table()


def test_torch_misses_the_same_curvature():
    torch = pytest.importorskip("torch")
    y = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.relu(torch.relu(y * y)), y, create_graph=True)
    (h,) = torch.autograd.grad(g, y, allow_unused=True)
    torch_value = 0.0 if h is None else float(h)
    exact = second_one_sided(lambda x, v: m_relu(m_relu(v * v)), (0.0, 0.0), 1, 1)
    assert torch_value != pytest.approx(exact)  # the error diffkit now reports is a real one
    result = dk.compare(lambda y: dk.relu(dk.relu(y * y)), 0.0, order=2)
    assert result.methods["reverse"].hessian[0, 0] == pytest.approx(torch_value, abs=1e-300)
    assert result.methods["reverse"].hessian_wrong == ((0, 0),)


def m_sqrt(x):
    return mpmath.sqrt(x) if x >= 0 else mpmath.nan


@pytest.mark.parametrize("f, twin", [
    # the derivative formula is inf * 0 on the left, where f is flat: the left slope is 0, so
    # the derivative is a kink [0, 1] (it was 'limit' 1, from the right side alone)
    (lambda x: dk.sqrt(dk.relu(x) ** 2), lambda x: m_sqrt(m_relu(x) ** 2)),
    (lambda x: dk.sqrt(dk.relu(x) * dk.relu(x)), lambda x: m_sqrt(m_relu(x) * m_relu(x))),
    (lambda x: dk.sqrt(dk.relu(x)), lambda x: m_sqrt(m_relu(x))),  # [0, inf]
    (lambda x: dk.sqrt(dk.relu(-x)) + dk.relu(x), lambda x: m_sqrt(m_relu(-x)) + m_relu(x)),
])
def test_a_limit_takes_f_s_own_slope_on_a_side_where_the_formula_has_none(f, twin):
    def slope(side):  # 1e-400 steps: beyond 1e200 the quotient is taken as infinite
        value = one_sided(twin, (0.0,), 0, side)
        return float(value) if abs(value) < 1e200 else math.copysign(math.inf, value)

    left, right = slope(-1), slope(1)
    assert left != right
    ref = reference.compute(f, (0.0,), ("x",))
    assert ref.status == ("kink",)
    assert (ref.low[0], ref.high[0]) == (min(left, right), max(left, right))


def m_max(a, b):
    return a if a >= b else b


@pytest.mark.parametrize("point", [(-1e-300, 1e-300), (1e-300, -1e-300), (5e-324, -5e-324),
                                   (-1e-300, 2e-300)])
@pytest.mark.parametrize("f, twin", [
    # the outer switch is at its kink; the inner ones are 1e-300 (or 1 ulp) off theirs. The
    # probe beside the point (1e-23 away) kept the inner abs's slope but took its value across
    # its kink, saw the outer argument positive on both sides and called the slope exact:
    # AD's 0 (inside the one-sided interval [-1, 1]) was blamed
    (lambda x, y: dk.abs(dk.abs(x) - dk.abs(y)), lambda x, y: abs(abs(x) - abs(y))),
    (lambda x, y: dk.abs(dk.maximum(x, -x) - dk.maximum(y, -y)),
     lambda x, y: abs(m_max(x, -x) - m_max(y, -y))),
    (lambda x, y: dk.relu(dk.maximum(x, -x) - dk.abs(y)),
     lambda x, y: m_relu(m_max(x, -x) - abs(y))),
    (lambda x, y: dk.relu(dk.abs(x) - dk.abs(y)) * 2, lambda x, y: m_relu(abs(x) - abs(y)) * 2),
])
def test_a_switch_at_its_kink_over_switches_a_hair_off_theirs(f, twin, point):
    result = dk.compare(f, *point)
    for k in range(2):
        left, right = (float(one_sided(twin, point, k, side)) for side in (-1, 1))
        assert (result.bounds[k]) == (min(left, right), max(left, right)), result.table()
        for name in ("reverse", "forward"):
            inside = min(left, right) <= result.methods[name].gradient[k] <= max(left, right)
            assert inside == (k not in result.methods[name].wrong), result.table()


def test_a_limit_beside_a_pole_of_the_formula_stays_on_its_side():
    # relu(x)**y at x = -1e-300 is 0**y: 0 for y > 0, inf for y < 0. At y = 1e-300 the slope
    # along y is 0 (f is 0 all around), but d/dy = 0**y log 0 is undefined and its limit took
    # samples at y -+ 1e-23, across y = 0, and called f's jump there a jump at the point
    def twin(x, y):
        return m_relu(x) ** y

    point = (-1e-300, 1e-300)
    assert [one_sided(twin, point, 1, side) for side in (-1, 1)] == [0, 0]
    ref = reference.compute(lambda x, y: dk.relu(x) ** y, point, ("x", "y"))
    assert ref.status[1] in ("exact", "limit") and ref.gradient[1] == 0.0


@pytest.mark.parametrize("f, twin", [
    (lambda x, y: dk.relu(x) * dk.relu(y), lambda x, y: m_relu(x) * m_relu(y)),
    (lambda x, y: dk.abs(x) * dk.abs(y), lambda x, y: abs(x) * abs(y)),
])
def test_a_mixed_partial_sees_both_variables_switches_at_once(f, twin):
    """d2f/dxdy at (0, 0) from the four diagonal quadrants (mixed second differences with
    exact steps): relu(x) * relu(y) is xy for x, y > 0 and 0 elsewhere, so [0, 1]; along each
    axis alone every row looks like 0. Central differences' symmetric 0.25 was blamed."""
    h = mpmath.mpf(10) ** -300
    quadrants = []
    with mpmath.workdps(DPS):
        for a in (-1, 1):
            for b in (-1, 1):
                quadrants.append(float((twin(a * h, b * h) - twin(a * h, 0) - twin(0, b * h)
                                        + twin(0, 0)) / (a * b * h * h)))
    ref = reference.compute(f, (0.0, 0.0), ("x", "y"), order=2)
    for s, r in ((0, 1), (1, 0)):
        assert ref.hessian_status[s][r] == "kink"
        assert (ref.hessian_low[s, r], ref.hessian_high[s, r]) == (min(quadrants),
                                                                   max(quadrants))
    result = dk.compare(f, 0.0, 0.0, order=2)
    assert result.agree, result.table()


def test_mixed_partials_of_a_sum_over_vectors_at_their_switches():
    # sum_i relu(x_i) * relu(y_i) at pairs (0, 0), (0, -1), (1, 0): only pair 0's mixed entry
    # is a [0, 1] kink; pair 2's df/dy_2 = relu(1) H(y_2) is itself a kink [0, 1] (no second
    # derivative through y_2); every other mixed entry is exactly 0 (no common term)
    x = np.array([0.0, 0.0, 1.0])
    y = np.array([0.0, -1.0, 0.0])
    ref = reference.compute(lambda x, y: dk.sum(dk.relu(x) * dk.relu(y)), (x, y), ("x", "y"),
                            order=2)
    assert ref.status == ("exact",) * 5 + ("kink",)
    assert (ref.low[5], ref.high[5]) == (0.0, 1.0)
    for i in range(5):
        for j in range(5):
            if {i, j} != {0, 3}:
                assert ref.hessian_status[i][j] == "exact" and ref.hessian[i, j] == 0.0
        assert ref.hessian_status[i][5] == ref.hessian_status[5][i] == "undefined"
    assert ref.hessian_status[0][3] == ref.hessian_status[3][0] == "kink"
    assert (ref.hessian_low[0, 3], ref.hessian_high[0, 3]) == (0.0, 1.0)
    result = dk.compare(lambda x, y: dk.sum(dk.relu(x) * dk.relu(y)), x, y, order=2)
    assert result.agree, result.table()
