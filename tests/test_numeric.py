"""Tests of diffkit.numeric against closed forms and SymPy evaluated at 30 digits."""

import math

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from diffkit.errors import InputError, NotAnalyticError
from diffkit.numeric import (
    EPS,
    NumericDerivative,
    central_difference,
    complex_step,
    forward_difference,
    hessian,
)

X, Y = sympy.symbols("x y")

# (name, SymPy expression in x and y, the same function for NumPy, the point (x, y))
CASES = [
    ("sin", sympy.sin(X), lambda x, y: np.sin(x), (0.7, 0.0)),
    ("exp", sympy.exp(X), lambda x, y: np.exp(x), (1.0, 0.0)),
    ("log", sympy.log(X), lambda x, y: np.log(x), (0.3, 0.0)),
    ("x**y", X**Y, lambda x, y: x**y, (1.7, 2.3)),
    ("tanh", sympy.tanh(X * Y), lambda x, y: np.tanh(x * y), (0.4, -1.3)),
    ("sigmoid", 1 / (1 + sympy.exp(-X * Y)), lambda x, y: 1 / (1 + np.exp(-x * y)), (2.0, 1.5)),
    ("log*y**3", sympy.log(X) * Y**3, lambda x, y: np.log(x) * y**3, (40.0, 0.6)),
]


def reference_gradient(expr, point):
    subs = {X: sympy.Float(point[0], 30), Y: sympy.Float(point[1], 30)}
    return np.array([float(sympy.diff(expr, v).evalf(30, subs=subs)) for v in (X, Y)])


def actual_errors(result: NumericDerivative, reference):
    return np.abs(np.array(result.value) - reference)


@pytest.mark.parametrize("name, expr, f, point", CASES, ids=[case[0] for case in CASES])
def test_central_richardson_matches_sympy_and_its_error_bound(name, expr, f, point):
    reference = reference_gradient(expr, point)
    result = central_difference(f, point, argnums=(0, 1))
    assert result.applicable and result.reason == ""
    assert np.all(actual_errors(result, reference) <= 1e-12 * np.maximum(1, abs(reference)))
    assert np.all(actual_errors(result, reference) <= np.array(result.error))
    assert np.all(np.array(result.error) < 1e-11 * np.maximum(1, abs(reference)))


@pytest.mark.parametrize("name, expr, f, point", CASES, ids=[case[0] for case in CASES])
def test_plain_central_and_forward_match_sympy_within_their_error_bounds(name, expr, f, point):
    reference = reference_gradient(expr, point)
    scale = np.maximum(1, abs(reference))
    central = central_difference(f, point, argnums=(0, 1), richardson=False)
    forward = forward_difference(f, point, argnums=(0, 1))
    assert np.all(actual_errors(central, reference) <= 1e-8 * scale)
    assert np.all(actual_errors(forward, reference) <= 1e-6 * scale)
    assert np.all(actual_errors(central, reference) <= np.array(central.error))
    assert np.all(actual_errors(forward, reference) <= np.array(forward.error))
    assert central.method == "central" and forward.method == "forward"


@pytest.mark.parametrize("name, expr, f, point", CASES, ids=[case[0] for case in CASES])
def test_complex_step_matches_sympy_to_rounding(name, expr, f, point):
    reference = reference_gradient(expr, point)
    result = complex_step(f, point, argnums=(0, 1))
    assert result.applicable and result.method == "complex step"
    assert np.all(actual_errors(result, reference) <= 4e-15 * np.maximum(1, abs(reference)))


def test_richardson_beats_plain_central_on_exp_at_one():
    richardson = central_difference(math.exp, (1.0,)).value[0]
    plain = central_difference(math.exp, (1.0,), richardson=False).value[0]
    assert abs(richardson - math.e) < 1e-12
    assert abs(richardson - math.e) * 100 < abs(plain - math.e)


def test_steps_follow_the_documented_rule_and_are_exact():
    x = 3.7
    forward = forward_difference(np.sin, (x,)).step[0]
    central = central_difference(np.sin, (x,), richardson=False).step[0]
    assert forward == pytest.approx(math.sqrt(EPS) * x, rel=1e-6)
    assert central == pytest.approx(EPS ** (1 / 3) * x, rel=1e-6)
    assert (x + forward) - x == forward and (x + central) - x == central
    assert hessian(np.sin, (x,)).step[0] == pytest.approx(EPS**0.25 * x, rel=1e-6)


def sum_sin_times(a, b):
    return np.sum(np.sin(a) * b)


def test_array_arguments_give_gradients_of_their_shape():
    a = np.linspace(-1.0, 2.0, 6).reshape(2, 3)
    b = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]])
    for method in (central_difference, complex_step):
        result = method(sum_sin_times, (a, b), argnums=(0, 1))
        assert result.value[0].shape == (2, 3) and result.value[1].shape == (2, 3)
        assert result.error[0].shape == (2, 3) and result.step[1].shape == (2, 3)
        np.testing.assert_allclose(result.value[0], np.cos(a) * b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.value[1], np.sin(a), rtol=0, atol=1e-12)
    forward = forward_difference(sum_sin_times, (a, b), argnums=1)
    np.testing.assert_allclose(forward.value[0], np.sin(a), rtol=0, atol=1e-7)


def test_argnums_select_and_order_the_arguments():
    f = lambda x, y, z: x * y**2 + z  # noqa: E731
    point = (2.0, 3.0, 5.0)
    assert len(central_difference(f, point).value) == 1
    assert central_difference(f, point, argnums=1).value[0] == pytest.approx(12.0, rel=1e-13)
    swapped = central_difference(f, point, argnums=(1, 0)).value
    assert swapped[0] == pytest.approx(12.0, rel=1e-13)
    assert swapped[1] == pytest.approx(9.0, rel=1e-13)
    assert central_difference(f, point, argnums=-1).value[0] == pytest.approx(1.0, rel=1e-13)


def test_scalar_results_are_python_floats_and_zero_d_arrays_allowed():
    result = central_difference(lambda x, y: x * y, (2.0, np.array(3.0)), argnums=(0, 1))
    assert type(result.value[0]) is float and type(result.value[1]) is float
    assert type(result.error[0]) is float
    assert result.value == pytest.approx((3.0, 2.0), rel=1e-13)


def test_python_ints_and_float32_arrays_are_accepted():
    assert central_difference(lambda x: x**3, (2,)).value[0] == pytest.approx(12.0, rel=1e-13)
    a = np.array([1.0, 2.0], dtype=np.float32)
    result = central_difference(lambda v: np.sum(v**2), (a,))
    np.testing.assert_allclose(result.value[0], [2.0, 4.0], rtol=1e-13)


def test_the_callers_arrays_are_never_mutated():
    a = np.array([1.0, 2.0, 3.0])
    original = a.copy()

    def f(v):
        total = np.sum(v**2)
        v *= 10.0  # f mutating its input must not reach the caller nor later evaluations
        return total

    for method in (forward_difference, central_difference, complex_step):
        result = method(f, (a,))
        np.testing.assert_allclose(result.value[0], 2 * original, rtol=1e-6)
    hessian(f, (a,))
    np.testing.assert_array_equal(a, original)


def not_analytic_abs(x):
    if np.iscomplexobj(x):
        raise NotAnalyticError("abs is not analytic")
    return abs(x)


@pytest.mark.parametrize(
    "f, x, fragment",
    [
        (not_analytic_abs, 1.5, "abs is not analytic"),
        (lambda x: np.abs(x) ** 3, 1.5, "returned a real"),
        (lambda x: math.sin(x), 1.5, "refuses complex input"),
        (lambda a: np.sum(a.astype(float) ** 2), np.ones(2), "discards the imaginary part"),
        (lambda x: 2.0, 1.5, "returned a real"),
    ],
    ids=["NotAnalyticError", "np.abs", "math.sin", "cast to float", "constant"],
)
def test_complex_step_reports_not_applicable_instead_of_a_number(f, x, fragment):
    result = complex_step(f, (x,))
    assert result.applicable is False
    assert fragment in result.reason and "complex step does not apply" in result.reason
    assert "\n" not in result.reason
    assert np.all(np.isnan(result.value[0])) and np.all(np.isnan(result.error[0]))


def test_complex_step_not_applicable_in_a_later_element_poisons_all():
    def f(a):
        if np.iscomplex(a[1]):
            raise NotAnalyticError("relu is not analytic")
        return np.sin(a[0]) + a[1]

    result = complex_step(f, (np.array([0.3, 0.4]),))
    assert "relu is not analytic" in result.reason
    assert result.applicable is False
    assert np.all(np.isnan(result.value[0]))


def test_richardson_drops_steps_that_leave_the_domain():
    result = central_difference(np.log, (1e-3,))
    assert result.reason == ""
    assert result.value[0] == pytest.approx(1e3, rel=1e-12)
    assert abs(result.value[0] - 1e3) <= result.error[0]


def test_non_finite_at_the_point_reports_nan_and_why():
    for method in (forward_difference, central_difference, complex_step):
        result = method(np.log, (0.0,))
        assert math.isnan(result.value[0])
        assert "not finite at the point" in result.reason
    assert "not finite at the point" in hessian(np.log, (0.0,)).reason


def test_non_finite_near_the_point_reports_nan_for_that_element_only():
    a = np.array([4.0, 0.0])
    result = central_difference(lambda v: np.sum(np.sqrt(v)), (a,))
    assert result.value[0][0] == pytest.approx(0.25, rel=1e-12)
    assert math.isnan(result.value[0][1])
    assert "argument 0 at index (1,)" in result.reason


def test_domain_errors_of_math_functions_count_as_non_finite():
    result = forward_difference(lambda x: math.sqrt(-x), (0.0,))
    assert math.isnan(result.value[0]) and "not finite near the point" in result.reason
    assert math.isnan(hessian(math.sqrt, (0.0,)).value[0, 0])


@pytest.mark.parametrize(
    "args, argnums",
    [
        ((np.array([1, 2]),), 0),
        ((True,), 0),
        (([1.0, 2.0],), 0),
        (("1.0",), 0),
        ((np.array([1.0 + 1j]),), 0),
        ((np.array([1.0, np.nan]),), 0),
        ((1.0,), 1),
        ((1.0, 2.0), (0, 0)),
        ((1.0,), ()),
        ((1.0,), 0.0),
        (1.0, 0),
    ],
)
def test_bad_arguments_raise_input_error(args, argnums):
    for method in (forward_difference, central_difference, complex_step, hessian):
        with pytest.raises(InputError) as info:
            method(lambda *v: 0.0, args, argnums)
        assert "\n" not in str(info.value)


def test_non_scalar_or_complex_output_and_non_callable_raise_input_error():
    with pytest.raises(InputError):
        central_difference(lambda x: np.array([x, x]), (1.0,))
    with pytest.raises(InputError):
        forward_difference(lambda x: 1j * x, (1.0,))
    with pytest.raises(InputError):
        central_difference("sin", (1.0,))
    with pytest.raises(InputError):
        complex_step(np.sin, (1.0,), h=0.5)


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def test_hessian_of_rosenbrock_matches_closed_form_within_its_error():
    x, y = 1.2, 0.9
    closed = np.array([[2 - 400 * (y - 3 * x * x), -400 * x], [-400 * x, 200.0]])
    result = hessian(rosenbrock, (x, y), argnums=(0, 1))
    assert result.value.shape == (2, 2) and result.shapes == ((), ())
    np.testing.assert_allclose(result.value, closed, rtol=1e-7)
    assert np.all(np.abs(result.value - closed) <= result.error)
    assert np.array_equal(result.value, result.value.T) and result.reason == ""


def test_hessian_of_array_rosenbrock_matches_sympy():
    symbols = sympy.symbols("a0:4")
    expr = sum(100 * (symbols[i + 1] - symbols[i] ** 2) ** 2 + (1 - symbols[i]) ** 2
               for i in range(3))
    a = np.array([-0.5, 1.3, 0.8, 1.1])
    subs = {s: sympy.Float(float(v), 30) for s, v in zip(symbols, a, strict=True)}
    closed = np.array(sympy.hessian(expr, symbols).evalf(30, subs=subs), dtype=float)
    result = hessian(lambda v: np.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2), (a,))
    np.testing.assert_allclose(result.value, closed, rtol=0, atol=1e-5)
    assert np.all(np.abs(result.value - closed) <= result.error)


def test_hessian_blocks_follow_argument_shapes():
    a = np.linspace(0.1, 0.6, 6).reshape(2, 3)
    b = 1.5
    result = hessian(lambda a, b: np.sum(np.sin(a)) * b + b**3, (a, b), argnums=(0, 1))
    assert result.value.shape == (7, 7) and result.shapes == ((2, 3), ())
    assert result.block(0, 0).shape == (2, 3, 2, 3)
    diagonal = np.einsum("ijij->ij", result.block(0, 0))
    np.testing.assert_allclose(diagonal, -np.sin(a) * b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.block(0, 1), np.cos(a), rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.block(1, 0), np.cos(a), rtol=0, atol=1e-6)
    assert float(result.block(1, 1)) == pytest.approx(6 * b, rel=1e-6)


def mp_gradient(x, y):
    """Closed-form gradient of sin(x) exp(y) + x y**2 at 30 digits."""
    with mpmath.workdps(30):
        x, y = mpmath.mpf(x), mpmath.mpf(y)
        return np.array([float(mpmath.cos(x) * mpmath.exp(y) + y**2),
                         float(mpmath.sin(x) * mpmath.exp(y) + 2 * x * y)])


coordinate = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(coordinate, coordinate)
def test_random_points_agree_with_the_closed_form(x, y):
    f = lambda x, y: np.sin(x) * np.exp(y) + x * y**2  # noqa: E731
    reference = mp_gradient(x, y)
    scale = np.maximum(1, abs(reference))
    richardson = central_difference(f, (x, y), argnums=(0, 1))
    assert np.all(actual_errors(richardson, reference) <= 1e-12 * scale)
    assert np.all(actual_errors(richardson, reference) <= np.array(richardson.error))
    forward = forward_difference(f, (x, y), argnums=(0, 1))
    assert np.all(actual_errors(forward, reference) <= np.array(forward.error))
    complex_result = complex_step(f, (x, y), argnums=(0, 1))
    assert np.all(actual_errors(complex_result, reference) <= 1e-14 * scale)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=5))
def test_random_arrays_agree_with_the_closed_form(values):
    a = np.array(values)
    f = lambda v: np.sum(np.exp(v) * (1 + v**2))  # noqa: E731  (positive terms: no cancellation)
    gradient = central_difference(f, (a,))
    assert gradient.value[0].shape == a.shape
    actual = np.abs(gradient.value[0] - np.exp(a) * (1 + a) ** 2)
    assert np.all(actual <= 1e-12 * max(1.0, f(a)))  # rounding scales with |f|, not |f'|
    assert np.all(actual <= gradient.error[0] + 4 * EPS * np.exp(a) * (1 + a) ** 2)
    result = hessian(f, (a,))
    actual = np.abs(result.value - np.diag(np.exp(a) * (a * a + 4 * a + 3)))
    assert np.all(actual <= 1e-7 * max(1.0, f(a)))  # second differences: about sqrt(eps) |f|
    assert np.all(actual <= result.error)
