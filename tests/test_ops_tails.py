"""Every primitive in the tails: its VJP and JVP rules (through both engines, on floats and on
arrays) against sympy.diff of its SymPy counterpart at 30 digits, and its NumPy implementation
under the complex step against the same at 50 digits (SymPy evaluates with mpmath). Never
against diffkit's own code.

Accuracy asked: 1e-12 relative to the exact number, or 1e-300 absolute where the exact number is
below the smallest normal float (where float64 underflows, as exp(-800) does)."""

import functools
import itertools
import math

import numpy as np
import pytest
import sympy
from cases import ALL, CASES, differentiable_inputs

import diffkit as dk
from diffkit import ops
from diffkit.forward import jvp
from diffkit.numeric import complex_step
from diffkit.reverse import vjp

RTOL = 1e-12
UNDERFLOW_ATOL = 1e-300
TINY = float(np.finfo(float).tiny)  # the smallest normal float
HUGE = float(np.finfo(float).max)
H = 1e-20  # numeric.complex_step's step

MAGNITUDES = (1e-8, 1.0, 20.0, 40.0, 700.0, 800.0)
TAILS = tuple(sorted(s * m for m in MAGNITUDES for s in (-1.0, 1.0)))
ALPHAS = (0.0, 0.01, 1.0, 2.5)  # leaky_relu's and elu's second input
POWER_POINTS = [
    (x, y)
    for x in (0.0, 1e-8, 0.5, 1.0, 2.0, 20.0, 700.0)
    for y in (0.0, 1e-8, 0.5, 1.0, 2.0, 3.0, -1.0, -2.5, 20.0, 40.0)
] + [(x, y) for x in (-2.0, -20.0) for y in (0.0, 1.0, 2.0, 3.0, -1.0)]
POSITIVE_ONLY = ("log", "sqrt")
SCALAR_RULES = [n for n in ALL if CASES[n].symbolic]
ARRAY_OPS = [n for n in ALL if not CASES[n].symbolic]


def _points(name, tails=TAILS):
    """The argument tuples at which primitive `name` is checked."""
    if name == "power":
        return POWER_POINTS
    if name in ("leaky_relu", "elu"):
        return [(x, a) for x in tails for a in ALPHAS]
    if name == "heaviside":
        return [(x, 0.5) for x in tails]
    if len(ops.PRIMITIVES[name].vjp) == 2:  # binary: every pair, up to 700 (144 pairs)
        return list(itertools.product([x for x in tails if abs(x) < 800], repeat=2))
    return [(x,) for x in tails if x > 0 or name not in POSITIVE_ONLY]


def _symbols(count):
    return [sympy.Symbol(f"x{k}", real=True) for k in range(count)]


def _number(expr, digits):
    """expr as a float rounded from `digits` digits; None if it is not a finite real number.

    SymPy raises its working precision until `digits` digits are right (maxn bounds it: the
    cancellation in 1 - tanh(700)**2 costs 600 digits); a result short of them fails here."""
    v = sympy.N(expr, digits, maxn=8000)
    if v.is_real is not True or v.is_finite is not True:
        return None
    assert not isinstance(v, sympy.Float) or v._prec >= 53, f"{expr}: only {v} at {digits}"
    v = float(v)
    return v if abs(v) <= HUGE else None


@functools.cache
def exact(name, args, digits=30):
    """(value, partial derivatives) of primitive `name` at args from its SymPy counterpart.

    Each partial derivative is taken with the other arguments substituted exactly first (x**0
    is 1 before it is differentiated). None stands for a number that is not a finite real
    float (overflow, a pole, a complex logarithm).
    """
    syms = _symbols(len(args))
    point = [sympy.Rational(a) for a in args]  # the floats' exact binary values
    expr = ops.PRIMITIVES[name](*syms)  # dispatches to the SymPy counterpart
    assert isinstance(expr, sympy.Basic)
    value = _number(expr.subs(dict(zip(syms, point))), digits)
    partials = []
    for k, s in enumerate(syms):
        others = {t: p for j, (t, p) in enumerate(zip(syms, point)) if j != k}
        partials.append(_number(sympy.diff(expr.subs(others), s).subs(s, point[k]), digits))
    return value, tuple(partials)


def error(actual, reference):
    """Relative error of actual, or its absolute error divided by 1e-12 / 1e-300 where the
    reference underflows: either way <= 1e-12 passes."""
    actual = float(actual)
    if actual == reference:
        return 0.0
    if not math.isfinite(actual):
        return math.inf
    if abs(reference) < TINY:
        return abs(actual - reference) * RTOL / UNDERFLOW_ATOL
    return abs(actual - reference) / abs(reference)


def _checked(name, k):
    """Points at which input k of `name` is differentiable with a finite real derivative, with
    a finite value there, and that derivative."""
    found = []
    for args in _points(name):
        value, partials = exact(name, args)
        if value is not None and partials[k] is not None:
            found.append((args, partials[k]))
    return found


def _along(name, args, k):
    """primitive `name` as a function of its input k alone, the others fixed at args."""
    prim = ops.PRIMITIVES[name]

    def f(x):
        full = list(args)
        full[k] = x
        return prim(*full)

    return f


def _by_rule(mode, name, args, k):
    """The derivative in input k at args (floats or arrays) by reverse or forward mode."""
    f = _along(name, args, k)
    if mode == "vjp":
        out, pullback = vjp(f, args[k])
        return pullback(np.ones_like(out) if np.ndim(out) else 1.0)[0]
    return jvp(f, (args[k],), (np.ones_like(args[k]) if np.ndim(args[k]) else 1.0,))[1]


RULES = [(n, k) for n in SCALAR_RULES for k in differentiable_inputs(ops.PRIMITIVES[n])]


@pytest.mark.parametrize("mode", ["vjp", "jvp"])
@pytest.mark.parametrize("name, k", RULES, ids=[f"{n}-{k}" for n, k in RULES])
def test_rule_on_floats_is_accurate_in_the_tails(mode, name, k):
    found = _checked(name, k)
    assert len(found) >= 5
    wrong = {}
    for args, reference in found:
        e = error(_by_rule(mode, name, args, k), reference)
        if not e <= RTOL:
            wrong[args] = e
    assert not wrong, f"{name} {mode}[{k}] errors at {wrong}"


@pytest.mark.parametrize("mode", ["vjp", "jvp"])
@pytest.mark.parametrize("name, k", RULES, ids=[f"{n}-{k}" for n, k in RULES])
def test_rule_on_arrays_is_accurate_in_the_tails(mode, name, k):
    found = _checked(name, k)
    args = tuple(np.array([a[j] for a, _ in found]) for j in range(len(found[0][0])))
    reference = [r for _, r in found]
    computed = _by_rule(mode, name, args, k)
    errors = [error(c, r) for c, r in zip(computed, reference)]
    wrong = {a: e for (a, _), e in zip(found, errors) if not e <= RTOL}
    assert not wrong, f"{name} {mode}[{k}] on arrays errors at {wrong}"


@pytest.mark.parametrize(
    "name", [n for n in SCALAR_RULES if not differentiable_inputs(ops.PRIMITIVES[n])]
)
def test_non_differentiable_primitives_have_zero_derivative_off_their_jumps(name):
    for args in _points(name):
        _, partials = exact(name, args)
        assert all(p == 0.0 for p in partials), (name, args, partials)


# ---- arrays: reductions, matmul, shapes, where; tail values as the entries ----

def _tail_entries(shape, rng):
    """Distinct tail values (no ties for max) filling `shape`, signs and order shuffled."""
    pool = [s * m * (1 + 0.125 * j) for j in range(4) for m in MAGNITUDES[:5] for s in (-1, 1)]
    return np.array(rng.permutation(pool)[: math.prod(shape)], dtype=float).reshape(shape)


def _is_float_array(a):
    return np.asarray(a).dtype.kind == "f"


def _exact_jacobian(name, args, params, k):
    """d out / d args[k] from the SymPy counterpart, shape (out.size, args[k].size)."""
    syms = [
        np.array([sympy.Symbol(f"a{j}_{i}", real=True) for i in range(np.size(a))],
                 dtype=object).reshape(np.shape(a)) if _is_float_array(a) else a
        for j, a in enumerate(args)
    ]
    out = np.asarray(ops.PRIMITIVES[name](*syms, **params), dtype=object)
    point = {
        s: sympy.Rational(float(v))
        for j, a in enumerate(args) if _is_float_array(a)
        for s, v in zip(np.ravel(syms[j]), np.ravel(a))
    }
    return np.array([
        [_number(sympy.diff(o, s).subs(point), 30) for s in np.ravel(syms[k])]
        for o in np.ravel(out)
    ], dtype=float)


@pytest.mark.parametrize("name", ARRAY_OPS)
def test_array_rules_are_accurate_at_tail_values(name):
    rng = np.random.default_rng(5)
    args, params = CASES[name].draw(rng)
    args = tuple(_tail_entries(np.shape(a), rng) if _is_float_array(a) else a for a in args)
    prim = ops.PRIMITIVES[name]
    for k in differentiable_inputs(prim):
        jac = _exact_jacobian(name, args, params, k)
        out_shape = np.shape(prim(*args, **params))

        def f(x, k=k):
            full = list(args)
            full[k] = x
            return prim(*full, **params)

        u = rng.normal(size=out_shape)
        v = rng.normal(size=np.shape(args[k]))
        by_vjp = np.ravel(vjp(f, args[k])[1](u)[0])
        by_jvp = np.ravel(jvp(f, (args[k],), (v,))[1])
        # a sum of products is accurate relative to the sum of the products' sizes
        for computed, expected, bound in (
            (by_vjp, jac.T @ np.ravel(u), np.abs(jac.T) @ np.abs(np.ravel(u))),
            (by_jvp, jac @ np.ravel(v), np.abs(jac) @ np.abs(np.ravel(v))),
        ):
            excess = np.abs(computed - expected) - (RTOL * bound + UNDERFLOW_ATOL)
            assert np.all(excess <= 0), f"{name} input {k}: {computed} != {expected}"


def test_logsumexp_at_plus_minus_700():
    x = np.array([700.0, -700.0, 699.0, -800.0])
    syms = _symbols(4)
    lse = sympy.log(sum(sympy.exp(s) for s in syms))
    point = {s: sympy.Rational(v) for s, v in zip(syms, x)}
    expected = [_number(sympy.diff(lse, s).subs(point), 30) for s in syms]
    value = _number(lse.subs(point), 30)
    assert error(dk.logsumexp(x), value) <= RTOL
    assert all(error(c, e) <= RTOL for c, e in zip(dk.grad(dk.logsumexp)(x), expected))
    for k in range(4):
        assert error(jvp(dk.logsumexp, (x,), (np.eye(4)[k],))[1], expected[k]) <= RTOL
        z = x.astype(complex)
        z[k] += H * 1j
        assert _complex_error(dk.logsumexp(z), value, expected[k]) <= RTOL, k


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_tanh_rule_on_arrays_of_any_layout(layout):
    """tanh's array branch replaces saturated entries by position: any memory order works."""
    base = np.array([-800.0, -40.0, -20.0, -3.0, -1.0, -1e-8, 1e-8, 0.5, 2.0, 20.0, 40.0, 700.0])
    x = {"C": base.reshape(3, 4), "F": base.reshape(4, 3).T,
         "strided": np.repeat(base, 2).reshape(4, 6)[:, ::2]}[layout]
    expected = [exact("tanh", (float(v),))[1][0] for v in np.ravel(x)]
    for computed in (dk.grad(lambda x: dk.sum(dk.tanh(x)))(x),
                     jvp(dk.tanh, (x,), (np.ones_like(x),))[1]):
        errors = [error(c, e) for c, e in zip(np.ravel(computed), expected)]
        assert max(errors) <= RTOL, dict(zip(np.ravel(x), errors))


# ---- the bugs named in the issue, each on its own ----

def test_derivative_of_x_to_the_zero_is_zero_at_zero():
    assert dk.grad(lambda x: x**0.0)(0.0) == 0.0
    assert dk.jvp(lambda x: x**0.0, (0.0,), (1.0,))[1] == 0.0
    assert dk.grad(lambda x: x**0)(0.0) == 0.0
    np.testing.assert_array_equal(dk.grad(lambda x: dk.sum(x**0.0))(np.zeros(3)), np.zeros(3))
    assert dk.grad(dk.grad(lambda x: x**0.0))(0.0) == 0.0


@pytest.mark.parametrize("x", [2.0, 0.5, -3.0])
def test_hessian_of_power_still_right_at_exponent_zero(x):
    a, b = sympy.symbols("a b", real=True)
    point = {a: sympy.Rational(x), b: 0}
    # d/dy of x**y needs log(x): with x < 0 only the x-x entry is real
    pairs = [(a, a), (a, b), (b, a), (b, b)] if x > 0 else [(a, a)]
    expected = [float(sympy.diff(a**b, u, v).subs(point)) for u, v in pairs]
    assert x < 0 or expected[1] == 1 / x  # the entry a rule guarding y == 0 would lose
    f = lambda x, y: x**y  # noqa: E731
    reverse_over_reverse = [
        dk.grad(lambda x, y, k=k: dk.grad(f, argnums=k)(x, y), argnums=(0, 1))(x, 0.0)
        for k in (0, 1)
    ]
    for hessian in (dk.hessian(f, argnums=(0, 1))(x, 0.0), reverse_over_reverse):
        got = np.array(hessian, dtype=float).reshape(4)[: len(pairs)]
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("x", [-40.0, -20.0, -1.0, -1e-8])
def test_alpha_gradient_of_elu_at_alpha_zero_is_expm1(x):
    expected = float(sympy.N(sympy.exp(sympy.Rational(x)) - 1, 30))
    by_vjp = dk.grad(dk.elu, argnums=1)(x, 0.0)
    by_jvp = dk.jvp(lambda a: dk.elu(x, a), (0.0,), (1.0,))[1]
    assert error(by_vjp, expected) <= RTOL and error(by_jvp, expected) <= RTOL


SMOOTH_UNARY = ["exp", "sin", "cos", "tan", "tanh", "sinh", "cosh", "sigmoid", "softplus",
                "silu"]


@pytest.mark.parametrize("name", SMOOTH_UNARY)
def test_second_derivatives_through_the_rules_in_the_tails(name):
    s = _symbols(1)[0]
    expr = ops.PRIMITIVES[name](s)
    f = ops.PRIMITIVES[name]
    wrong = {}
    for (x,) in _points(name):
        first = exact(name, (x,))[1][0]
        if first is None:  # exp, sinh and cosh overflow at 800
            continue
        expected = _number(sympy.diff(expr, s, 2).subs(s, sympy.Rational(x)), 30)
        for label, computed in (("reverse-reverse", dk.grad(dk.grad(f))(x)),
                                ("forward-reverse", dk.hessian(f)(x))):
            # two rules in a row: allow each its 1e-12; the product rule adds a few eps of
            # f'(x) (at an inflection point, x = 0 for sigmoid, that is all of f'')
            allowed = 2 * RTOL * abs(expected) + 4e-16 * abs(first) + UNDERFLOW_ATOL
            if not abs(computed - expected) <= allowed:
                wrong[label, x] = (computed, expected)
    assert not wrong, f"{name}'' errors at {wrong}"


# ---- the complex step: Im f(x + ih) / h and Re f(x + ih) against 50 digits ----

COMPLEX_TAILS = (-800.0, -700.0, -40.0, -20.0, -1.0, 1.0, 20.0, 40.0, 700.0, 800.0)
ELEMENTWISE = [n for n in ALL if ops.PRIMITIVES[n].elementwise and n != "where"]


def _at_switch(name, args) -> bool:
    """True where the op switches branch exactly at args: its first argument at 0, or a tie."""
    if not ops.PRIMITIVES[name].kink and name not in ("sign", "heaviside", "maximum"):
        return False
    return args[0] == args[1] if name == "maximum" else args[0] == 0


def _complex_cases(name, switches=False):
    """(args, k, exact value, exact partial k) for the complex step in input k; only the
    points exactly at a switch with `switches`, only the others without."""
    out = []
    for args in _points(name, COMPLEX_TAILS):
        if _at_switch(name, args) != switches:
            continue
        value, partials = exact(name, args, 50)
        for k, d in enumerate(partials):
            if value is not None and d is not None:
                out.append((args, k, value, d))
    return out


@pytest.mark.parametrize("name", ["abs", "relu", "leaky_relu", "elu", "maximum", "sign",
                                  "heaviside"])
def test_a_complex_step_exactly_at_a_switch_is_refused(name):
    prim = ops.PRIMITIVES[name]
    args = (0.0, 0.0) if name == "maximum" else (0.0, *prim.parameters.values()) if (
        prim.parameters) else (0.0, 0.5) if name == "heaviside" else (0.0,)
    for k in range(2 if name == "maximum" else 1):
        z = [complex(a) for a in args]
        z[k] += H * 1j
        with pytest.raises(dk.SwitchPointError, match=f"{name} .*the complex step does not "
                           "apply there"):
            prim(*z)
        vector = [np.array([a, 1.0], dtype=complex) for a in z]  # one element on the switch
        with pytest.raises(dk.SwitchPointError):
            prim(*vector)
    # a switch argument that the step does not move (imaginary part 0) is no step at all
    assert prim(*[complex(a) for a in args]).imag == 0


def _complex_error(z_out, value, derivative):
    """The worse of the value's and the derivative's errors. The derivative is matched
    absolutely where h * f'(x) underflows (no imaginary part can hold it); the value where it
    is 0, as Re f(x + ih) = f(x) - h**2 f''(x) / 2 keeps its h**2 term (log(1 + ih))."""
    derivative_error = error(np.imag(z_out) / H, derivative)
    if abs(H * derivative) < TINY:
        derivative_error = abs(np.imag(z_out) / H - derivative) * RTOL / UNDERFLOW_ATOL
    if derivative == 0.0:  # Im f(x + ih) / h = f'(x) - h**2 f'(3)(x) / 6 + ...: (0 + ih)**3
        derivative_error = abs(np.imag(z_out) / H) * RTOL / (1e4 * H * H)
    value_error = error(np.real(z_out), value)
    if value == 0.0:
        value_error = abs(np.real(z_out)) * RTOL / (1e4 * H * H)
    return value_error if value_error > derivative_error else derivative_error


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_complex_step_through_the_implementation_is_exact_in_the_tails(name):
    prim = ops.PRIMITIVES[name]
    cases = _complex_cases(name)
    assert len(cases) >= 5
    wrong = {}
    for args, k, value, derivative in cases:
        z = [complex(a) for a in args]
        z[k] += H * 1j
        e = _complex_error(prim(*z), value, derivative)
        if not e <= RTOL:
            wrong[args, k] = e
    assert not wrong, f"{name} complex step errors at {wrong}"
    for k in sorted({k for _, k, _, _ in cases}):  # the same on arrays: the vectorized path
        chosen = [c for c in cases if c[1] == k]
        z = [np.array([c[0][j] for c in chosen], dtype=complex) for j in range(len(chosen[0][0]))]
        z[k] = z[k] + H * 1j
        outs = prim(*z)
        for out, (args, _, value, derivative) in zip(np.ravel(outs), chosen):
            assert _complex_error(out, value, derivative) <= RTOL, (name, args, k, out)


@pytest.mark.parametrize("x", [710.0, 800.0, -800.0, -40.0, 40.0])
@pytest.mark.parametrize("name", ["softplus", "sigmoid", "silu", "elu"])
def test_numeric_complex_step_of_activations_far_out(name, x):
    s = _symbols(1)[0]
    expected = _number(sympy.diff(ops.PRIMITIVES[name](s), s).subs(s, sympy.Rational(x)), 50)
    result = complex_step(ops.PRIMITIVES[name], (x,))
    assert result.applicable
    if abs(H * expected) < TINY:  # h f'(x) underflows: no imaginary part can hold it
        assert abs(result.value[0] - expected) <= UNDERFLOW_ATOL
    else:
        assert error(result.value[0], expected) <= RTOL


# ---- piecewise primitives under the complex step: branch on the real part ----

PIECEWISE = [
    ("abs", lambda x: dk.abs(x)),
    ("relu", lambda x: dk.relu(x)),
    ("leaky_relu", lambda x: dk.leaky_relu(x, 0.1)),
    ("elu", lambda x: dk.elu(x, 0.5)),
    ("maximum-x", lambda x: dk.maximum(x, 0.0)),
    ("maximum-y", lambda y: dk.maximum(0.0, y)),
    ("max", lambda x: dk.max(np.array([0.0, 0.0, -1.0]) + x * np.array([1.0, 0.0, 0.0]))),
]
_P = sympy.Symbol("p", real=True)
PIECEWISE_SYMPY = {
    "abs": sympy.Abs(_P),
    "relu": sympy.Piecewise((_P, _P > 0), (0, True)),
    "leaky_relu": sympy.Piecewise((_P, _P > 0), (sympy.Rational(1, 10) * _P, True)),
    "elu": sympy.Piecewise((_P, _P > 0), (sympy.Rational(1, 2) * (sympy.exp(_P) - 1), True)),
    "maximum-x": sympy.Max(_P, 0),
    "maximum-y": sympy.Max(0, _P),
    "max": sympy.Max(_P, 0),
}


@pytest.mark.parametrize("x", [-3.0, -1e-8, 0.0, 1e-8, 2.5])
@pytest.mark.parametrize("label, f", PIECEWISE, ids=[p[0] for p in PIECEWISE])
def test_piecewise_primitives_take_the_complex_step(label, f, x):
    """Away from the kink the exact derivative (AD too); exactly at it the complex step says
    it does not apply, and AD gives the convention (SymPy's, at 0)."""
    expected = float(sympy.diff(PIECEWISE_SYMPY[label], _P).subs(_P, sympy.Rational(x)))
    assert dk.grad(f)(x) == pytest.approx(expected, rel=1e-15, abs=0)
    result = complex_step(f, (x,))
    if x == 0.0:
        assert math.isnan(result.value[0]) and result.scheme[0] == "none"
        assert "exactly at its switch 0" in result.reason or "at a tie" in result.reason
        return
    assert result.applicable, result.reason
    assert result.value[0] == pytest.approx(expected, rel=1e-15, abs=0)


def test_maximum_of_tied_numbers_has_no_complex_step_derivative():
    both = complex_step(dk.maximum, (1.5, 1.5), argnums=(0, 1))
    assert np.all(np.isnan(np.ravel(both.value)))
    assert "maximum at a tie of its arguments" in both.reason
    apart = complex_step(dk.maximum, (1.5, 1.5 - 1e-12), argnums=(0, 1))
    np.testing.assert_array_equal(np.ravel(apart.value), [1.0, 0.0])


def test_max_reduction_refuses_a_step_at_a_tie_and_takes_the_others():
    x = np.array([[3.0, 3.0, 1.0], [2.0, -1.0, 0.5]])
    result = complex_step(lambda a: dk.sum(dk.max(a, axis=1) * np.array([1.0, 10.0])), (x,))
    # the max of row 0 has no derivative in its tied entries; every other entry has one
    np.testing.assert_array_equal(result.value[0].reshape(2, 3),
                                  [[np.nan, np.nan, 0.0], [10.0, 0.0, 0.0]])
    assert result.scheme[0].reshape(2, 3)[0, :2].tolist() == ["none", "none"]
    assert "max at a tie of its entries" in result.reason
    assert dk.max(x + 1e-20j, axis=1).real.tolist() == [3.0, 2.0]  # no entry stepped: a value


def test_sign_and_heaviside_of_complex_input_are_real_constants():
    z = np.array([-2.0 + 1e-20j, 0.0, 3.0 - 1e-20j])
    np.testing.assert_array_equal(ops.sign(z), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(ops.heaviside(z, 0.5), [0.0, 0.5, 1.0])
    assert np.isrealobj(ops.sign(z)) and np.isrealobj(ops.heaviside(z, 0.5))


def test_a_user_primitive_without_a_complex_path_still_refuses():
    kinked = dk.primitive(lambda x: np.abs(x), name="kinked", analytic=False)
    with pytest.raises(dk.NotAnalyticError, match="kinked"):
        kinked(1.0 + 1e-20j)
    result = complex_step(kinked, (1.0,))
    assert not result.applicable and "kinked" in result.reason


def test_nan_propagates_through_the_switches():
    # a nan input is no negative number: relu and maximum must not turn it into a value
    for value in (dk.relu(math.nan), dk.maximum(math.nan, 1.0), dk.maximum(1.0, math.nan)):
        assert math.isnan(value)
    assert np.isnan(dk.relu(np.array([math.nan, -1.0]))[0])
