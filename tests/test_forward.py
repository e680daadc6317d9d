"""Forward mode (dual numbers) against SymPy and closed forms; Hessian-vector products."""

import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.tolerance import close


def test_jvp_of_the_sigmoid_neuron_matches_the_article():
    def f(x, w, b):
        return 1 / (1 + dk.exp(-(w * x + b)))

    value, dw = dk.jvp(f, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    assert (value, dw) == (0.5, 0.25)


@pytest.mark.parametrize("point", [(0.3, 1.7), (-1.1, 0.6)])
def test_jvp_matches_sympy_directional_derivative(point):
    def f(x, y):
        return dk.sin(x) * dk.exp(y) + dk.tanh(x * y) / (1 + y * y) + dk.elu(x, 0.7) * dk.silu(y)

    x, y = sympy.symbols("x y", real=True)
    expr = f(x, y)
    direction = (0.4, -1.3)
    at = {x: sympy.Rational(repr(point[0])), y: sympy.Rational(repr(point[1]))}
    expected = sum(
        d * float(sympy.N(sympy.diff(expr, s).subs(at), 30)) for d, s in zip(direction, (x, y))
    )
    assert close(dk.jvp(f, point, direction)[1], expected, rtol=1e-13)


def test_hvp_matches_sympy_hessian():
    def f(x, y):
        return dk.log(1 + x * x) * dk.cos(y) + x**3 * y

    x, y = sympy.symbols("x y", real=True)
    hess = sympy.hessian(f(x, y), (x, y)).subs({x: sympy.Rational(1, 2), y: 2})
    v = (1.5, -0.5)
    expected = np.array(sympy.N(hess * sympy.Matrix(v), 30), dtype=float).reshape(-1)
    assert close(dk.hvp(f, (0.5, 2.0), v), expected, rtol=1e-13)


def test_jacfwd_equals_reverse_jacobian_on_arrays():
    a = np.random.default_rng(3).normal(size=(3, 4))

    def f(x):
        return dk.softplus(a @ x) * dk.sum(x**2)

    x = np.linspace(-1, 1, 4)
    assert close(dk.jacfwd(f)(x), dk.jacobian(f)(x), rtol=1e-13)


def test_output_independent_of_input_has_zero_tangent():
    assert dk.jvp(lambda x: 3.0, (1.0,), (1.0,)) == (3.0, 0.0)


def test_tangent_shape_must_match():
    with pytest.raises(dk.InputError, match="tangent 0 has shape"):
        dk.jvp(dk.sin, (np.ones(3),), (np.ones(2),))


def test_jacfwd_of_a_tuple_output_is_indexed_output_then_argument():
    x, y = np.array([0.3, -1.2, 2.0]), 0.7

    def f(x, y):
        return dk.tanh(x) * y, dk.sum(x) * y * y, y

    jac = dk.jacfwd(f, argnums=(0, 1))(x, y)
    expected = (
        (np.diag(1 - np.tanh(x) ** 2) * y, np.tanh(x)),
        (y * y * np.ones(3), 2 * y * x.sum()),
        (np.zeros(3), 1.0),
    )
    reverse = dk.jacobian(f, argnums=(0, 1))(x, y)
    for i in range(3):
        for j in range(2):
            assert np.shape(jac[i][j]) == np.shape(expected[i][j])
            assert close(jac[i][j], expected[i][j], rtol=1e-15)
            assert close(reverse[i][j], expected[i][j], rtol=1e-15)
    only_x = dk.jacfwd(f)(x, y)
    assert len(only_x) == 3 and close(only_x[1], expected[1][0])


def test_jacfwd_inside_grad_is_differentiated_through():
    x = np.array([0.2, -0.4, 1.3])

    def trace_of_jacobian(y):
        return dk.sum(dk.jacfwd(lambda x: dk.exp(x * y))(x) * np.eye(3))

    # trace of diag(y exp(x y)): d/dy = sum(exp(x y) (1 + x y))
    y = 0.6
    expected = np.sum(np.exp(x * y) * (1 + x * y))
    assert close(dk.grad(trace_of_jacobian)(y), expected, rtol=1e-14)


def test_jacfwd_of_an_empty_argument_has_the_empty_shape():
    jac = dk.jacfwd(lambda x, y: dk.sum(x) * y + y, argnums=(0, 1))(np.zeros(0), 2.0)
    assert jac[0].shape == (0,) and jac[1] == 1.0
