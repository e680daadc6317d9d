"""Every primitive's rules, checked independently: on scalar symbols against sympy.diff at 30
digits, and at every shape its case allows against finite differences of the NumPy
implementation (test_rules.py checks them on arrays against SymPy, to second order, and the VJP
as the exact transpose of the JVP); kink conventions, tails and SymPy arrays."""

import numpy as np
import pytest
import sympy
from cases import ALL, CASES, differentiable_inputs, variant_id

import diffkit as dk
from diffkit import ops
from diffkit.forward import jvp
from diffkit.reverse import vjp
from diffkit.tolerance import close

DIGITS = 30


def test_every_primitive_has_a_case():
    assert set(CASES) == set(ops.PRIMITIVES)


def _symbols(args):
    return [sympy.Symbol(f"x{k}", real=True) for k in range(len(args))]


def _at(expr, syms, args):
    point = {s: sympy.Float(repr(a), DIGITS) for s, a in zip(syms, args)}
    return sympy.N(sympy.sympify(expr).subs(point), DIGITS)


SYMBOLIC = [name for name in ALL if CASES[name].symbolic]


@pytest.mark.parametrize("name", SYMBOLIC)
@pytest.mark.parametrize("seed", range(3))
def test_rules_equal_sympy_diff(name, seed):
    prim = ops.PRIMITIVES[name]
    args, params = CASES[name].draw(np.random.default_rng(seed))
    syms = _symbols(args)
    expr = prim(*syms, **params)
    assert isinstance(expr, sympy.Basic)
    assert float(_at(expr, syms, args)) == pytest.approx(float(prim(*args, **params)), rel=1e-12)
    for k, s in enumerate(syms):
        expected = _at(sympy.diff(expr, s), syms, args)
        if prim.vjp[k] is None:
            assert prim.jvp[k] is None
            assert expected == 0, f"{name} is differentiable in input {k} but has no rule"
            continue
        by_vjp = _at(prim.vjp[k](sympy.Integer(1), expr, *syms, **params), syms, args)
        by_jvp = _at(prim.jvp[k](sympy.Integer(1), expr, *syms, **params), syms, args)
        tol = sympy.Float(10.0 ** (5 - DIGITS)) * (1 + abs(expected))
        assert abs(by_vjp - expected) < tol, f"{name} vjp[{k}]: {by_vjp} != {expected}"
        assert abs(by_jvp - expected) < tol, f"{name} jvp[{k}]: {by_jvp} != {expected}"


@pytest.mark.parametrize("name", [n for n in ALL if ops.PRIMITIVES[n].scalar is not None])
@pytest.mark.parametrize("seed", range(5))
def test_scalar_path_matches_numpy(name, seed):
    prim = ops.PRIMITIVES[name]
    args, params = CASES[name].draw(np.random.default_rng(seed))
    if not all(type(a) is float for a in args):
        args = tuple(float(np.ravel(a)[0]) for a in args)
        params = {k: v for k, v in params.items() if k not in ("axis", "keepdims")}
    fast = prim.scalar(*args, **params)
    expected = np.asarray(prim.impl(*args, **params))
    assert expected.ndim > 0 or type(fast) is float
    assert close(fast, expected, rtol=1e-14, atol=1e-15)


def _split(name, rng, variant):
    """(differentiable args, a function of them applying the primitive)."""
    prim = ops.PRIMITIVES[name]
    args, params = CASES[name].draw(rng, variant)
    diff = differentiable_inputs(prim)

    def f(*xs):
        full = list(args)
        for k, x in zip(diff, xs):
            full[k] = x
        return prim(*full, **params)

    return [args[k] for k in diff], f


def _directional(f, xs, vs, h=1e-3):
    """Five-point central difference of f along direction vs: error O(h^4)."""

    def at(s):
        return np.asarray(f(*(x + s * v for x, v in zip(xs, vs))), dtype=float)

    return (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)


def _random_like(rng, x):
    return float(rng.normal()) if np.ndim(x) == 0 else rng.normal(size=np.shape(x))


DIFFERENTIABLE = [n for n in ALL if differentiable_inputs(ops.PRIMITIVES[n])]
VARIANTS = [(n, v) for n in DIFFERENTIABLE for v in CASES[n].variants]
VARIANT_IDS = [f"{n}-{variant_id(v)}" for n, v in VARIANTS]


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=VARIANT_IDS)
def test_jvp_matches_finite_differences(name, variant):
    rng = np.random.default_rng(7)
    xs, f = _split(name, rng, variant)
    vs = [_random_like(rng, x) for x in xs]
    _, tangent = jvp(f, xs, vs)
    expected = _directional(f, xs, vs)
    assert np.shape(tangent) == np.shape(expected)
    assert close(tangent, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(("name", "variant"), VARIANTS, ids=VARIANT_IDS)
def test_vjp_inner_product_identity_with_finite_differences(name, variant):
    rng = np.random.default_rng(11)
    xs, f = _split(name, rng, variant)
    vs = [_random_like(rng, x) for x in xs]
    out, pullback = vjp(f, *xs)
    u = _random_like(rng, out)
    cotangents = pullback(u)
    assert [np.shape(c) for c in cotangents] == [np.shape(x) for x in xs]
    lhs = np.sum(u * _directional(f, xs, vs))
    rhs = sum(np.sum(c * v) for c, v in zip(cotangents, vs))
    assert close(rhs, lhs, rtol=1e-7, atol=1e-9)


def test_broadcast_cotangents_are_summed_to_input_shape():
    x = np.arange(3.0).reshape(3, 1)
    y = np.arange(4.0)
    gx, gy = dk.grad(lambda x, y: dk.sum(x * y), argnums=(0, 1))(x, y)
    assert gx.shape == (3, 1) and gy.shape == (4,)
    np.testing.assert_allclose(gx, np.full((3, 1), y.sum()))
    np.testing.assert_allclose(gy, np.full(4, x.sum()))


class TestKinkConvention:
    """At x = 0 every engine and SymPy use the same derivative (ops module docstring)."""

    CASES = [
        (dk.relu, {}, 0.0),
        (dk.leaky_relu, {"alpha": 0.1}, 0.1),
        (dk.elu, {"alpha": 0.5}, 0.5),
        (dk.abs, {}, 0.0),
    ]

    @pytest.mark.parametrize("fn, params, expected", CASES)
    def test_reverse_forward_sympy_agree_at_zero(self, fn, params, expected):
        assert dk.grad(lambda x: fn(x, **params))(0.0) == expected
        assert dk.jvp(lambda x: fn(x, **params), (0.0,), (1.0,))[1] == expected
        x = sympy.Symbol("x", real=True)
        assert sympy.diff(fn(x, **params), x).subs(x, 0) == pytest.approx(expected)

    def test_maximum_splits_ties(self):
        assert dk.grad(dk.maximum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
        x, y = sympy.symbols("x y", real=True)
        assert sympy.diff(sympy.Max(x, y), x).subs({x: 1, y: 1}) == sympy.Rational(1, 2)


ACTIVATIONS = [dk.sigmoid, dk.softplus, dk.silu, dk.tanh, dk.elu, dk.relu, dk.leaky_relu]


@pytest.mark.parametrize("fn", ACTIVATIONS, ids=lambda f: f.name)
@pytest.mark.parametrize("x", [-1000.0, 1000.0, np.array([-1000.0, 0.5, 1000.0])])
def test_activations_stay_finite_at_1000(fn, x):
    value = fn(x)
    gradient = dk.grad(lambda x: dk.sum(fn(x)))(x)
    second = dk.grad(lambda x: dk.sum(dk.grad(lambda y: dk.sum(fn(y)))(x)))(x)
    for out in (value, gradient, second):
        assert np.all(np.isfinite(out))


def test_logsumexp_is_stable():
    x = np.array([1000.0, 1000.0, -1000.0])
    assert dk.logsumexp(x) == pytest.approx(1000.0 + np.log(2.0))
    np.testing.assert_allclose(dk.grad(dk.logsumexp)(x), [0.5, 0.5, 0.0], atol=1e-300)


def test_piecewise_primitives_branch_on_the_real_part_of_complex_input():
    # Martins, Sturdza & Alonso (2003): relu(x + ih) = x + ih for x > 0, 0 for x < 0, so
    # Im relu(x + ih) / h is relu'(x); a user primitive registered analytic=False still refuses
    h = 1e-20
    assert dk.relu(1.5 + h * 1j) == 1.5 + h * 1j
    assert dk.relu(-1.5 + h * 1j) == 0
    assert dk.abs(-2.0 + h * 1j) == 2.0 - h * 1j
    assert dk.sin(np.array([1.0 + h * 1j])).imag[0] == pytest.approx(np.cos(1.0) * h)
    refusing = dk.primitive(lambda x: np.maximum(x, 0), name="my_relu", analytic=False)
    with pytest.raises(dk.NotAnalyticError, match="my_relu is not analytic"):
        refusing(1.0 + h * 1j)


@pytest.mark.parametrize("axis", [None, (0, 1), 1, -2])
def test_max_of_a_sympy_array_over_any_axes(axis):
    entries = sympy.symbols("a:6", real=True)
    a = np.array(entries, dtype=object).reshape(2, 3)
    by_rows = [sympy.Max(*entries[:3]), sympy.Max(*entries[3:])]
    expected = {None: sympy.Max(*entries), (0, 1): sympy.Max(*entries), 1: by_rows,
                -2: [sympy.Max(entries[k], entries[k + 3]) for k in range(3)]}[axis]
    assert np.array(dk.max(a, axis=axis)).tolist() == expected
    assert np.shape(dk.max(a, axis=axis, keepdims=True)) == np.shape(np.max(np.ones((2, 3)),
                                                                        axis=axis, keepdims=True))
