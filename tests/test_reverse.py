"""Reverse mode against independent references: the article's numbers, SymPy, hand-written
float recurrences and finite differences; depth, cost and the API's shapes and errors."""

import gc
import itertools
import math
import weakref

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import diffkit as dk
from diffkit.reverse import Tracer
from diffkit.tolerance import close


def sigmoid_neuron(x, w, b):
    return 1 / (1 + dk.exp(-(w * x + b)))


def test_article_sigmoid_neuron():
    value, gradient = dk.value_and_grad(sigmoid_neuron, argnums=(0, 1, 2))(1.0, 0.0, 0.0)
    assert value == 0.5
    assert gradient == (0.0, 0.25, 0.25)
    assert all(type(g) is float for g in gradient)


def test_article_sum_product():
    gradient = dk.grad(lambda w1, w2, w3: (w1 + w2) * w3, argnums=(0, 1, 2))(1.0, 1.0, 1.0)
    assert gradient == (1.0, 1.0, 2.0)


def _sympy_point(f, names, point):
    syms = sympy.symbols(names, real=True)
    expr = f(*syms)
    at = dict(zip(syms, (sympy.Rational(repr(p)) for p in point)))
    grad = [sympy.N(sympy.diff(expr, s).subs(at), 30) for s in syms]
    hess = [[sympy.N(sympy.diff(expr, a, b).subs(at), 30) for b in syms] for a in syms]
    return np.array(grad, dtype=float), np.array(hess, dtype=float)


SMOOTH = [
    lambda x, y: dk.sin(x * y) + dk.exp(x) / y,
    lambda x, y: dk.sigmoid(x - y) ** 2 * dk.tanh(y),
    lambda x, y: dk.log(x * x + y * y) * dk.sqrt(dk.cosh(x)),
    lambda x, y: x**y + dk.softplus(x * y) - dk.silu(y),
    lambda x, y: dk.tan(x / 3) * dk.sinh(y) / (1 + x * x),
]


@pytest.mark.parametrize("f", SMOOTH)
@pytest.mark.parametrize("point", [(0.7, 1.3), (1.9, -0.4)])
def test_gradient_and_hessian_match_sympy(f, point):
    if point[1] < 0 and f is SMOOTH[3]:
        point = (point[0], -point[1])
    grad_ref, hess_ref = _sympy_point(f, "x y", point)
    assert close(dk.grad(f, argnums=(0, 1))(*point), grad_ref, rtol=1e-13)
    assert close(dk.hessian(f, argnums=(0, 1))(*point), hess_ref, rtol=1e-12)
    grad_of_grad = [
        [dk.grad(lambda *p, i=i: dk.grad(f, argnums=i)(*p), argnums=j)(*point) for j in (0, 1)]
        for i in (0, 1)
    ]
    assert close(grad_of_grad, hess_ref, rtol=1e-12)


def test_third_derivative_by_nesting():
    third = dk.grad(dk.grad(dk.grad(lambda x: dk.sin(x) * x)))
    x = 0.8
    assert close(third(x), -3 * math.sin(x) - x * math.cos(x), rtol=1e-14)


def test_million_deep_chain_without_recursion_error():
    depth = 10**6

    def chain(x):
        for _ in range(depth):
            x = dk.sin(x)
        return x

    expected, y = 1.0, 0.5
    for _ in range(depth):
        expected *= math.cos(y)
        y = math.sin(y)
    assert close(dk.grad(chain)(0.5), expected, rtol=1e-9)


def test_tape_is_freed_after_the_gradient():
    dk.grad(lambda x: dk.sum(dk.sin(x) * x))(np.ones(3))
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is Tracer]


def hand_mlp_gradients(x, w1, b1, w2):
    """d/d(w1, b1, w2) of mean(logsumexp(tanh(x @ w1 + b1) @ w2, axis=1)), backprop by hand in
    float64."""
    h = np.tanh(x.astype(float) @ w1 + b1)
    z = h @ w2
    dz = np.exp(z - np.log(np.exp(z).sum(1, keepdims=True))) / len(x)
    dh = (dz @ w2.T) * (1 - h**2)
    return x.T.astype(float) @ dh, dh.sum(0), h.T @ dz


def test_large_mlp_gradient_matches_hand_written_backprop_in_both_dtypes():
    """Arrays large enough (>= 64 KiB) that the tape keeps only what the rules read."""
    rng = np.random.default_rng(1)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-4)):
        x = rng.normal(size=(64, 300)).astype(dtype)
        w1 = (rng.normal(size=(300, 128)) / 17).astype(dtype)
        b1 = rng.normal(size=128).astype(dtype)
        w2 = (rng.normal(size=(128, 10)) / 11).astype(dtype)

        def loss(w1, b1, w2, x=x):
            return dk.mean(dk.logsumexp(dk.tanh(x @ w1 + b1) @ w2, axis=1))

        g1, gb, g2 = dk.grad(loss, argnums=(0, 1, 2))(w1, b1, w2)
        h1, hb, h2 = hand_mlp_gradients(x, w1, b1, w2)
        assert g1.dtype == dtype and gb.dtype == dtype
        assert close(g2, h2, rtol=rtol, atol=rtol * 1e-2)
        assert close(gb, hb, rtol=rtol, atol=rtol * 1e-2)
        assert close(g1, h1, rtol=rtol, atol=rtol * 1e-2)


def test_the_tape_frees_large_arrays_no_rule_reads():
    """A rule that reads its output, not its input (tanh's as 1 - ans**2, here a primitive of
    the test's own so that ops.py's choices do not matter): the pre-activation is freed while
    the tape lives (as PyTorch saves only what a backward reads); a rule reading it keeps it."""
    seen = {}
    squash = dk.primitive(np.tanh, name="squash")
    dk.defvjp(squash, lambda g, ans, x: g * (1 - ans * ans))

    def f(x):
        z = x * 2.0 + 1.0
        seen["z"] = weakref.ref(z.value)
        return dk.sum(squash(z))

    x = np.linspace(-1, 1, 20_000)
    out, pullback = dk.vjp(f, x)
    gc.collect()
    assert seen["z"]() is None
    assert close(pullback(1.0)[0], 2 * (1 - np.tanh(2 * x + 1) ** 2), rtol=1e-14)

    cube = dk.primitive(lambda x: x**3, name="cube")

    class Rule:  # a bound method: its code's first parameter is self, not the cotangent
        def vjp(self, g, ans, x):
            return 3 * g * x**2

    dk.defvjp(cube, Rule().vjp)

    def h(x):
        z = x * 2.0
        seen["z"] = weakref.ref(z.value)
        return dk.sum(cube(z))

    out, pullback = dk.vjp(h, x)
    gc.collect()
    assert seen["z"]() is not None
    assert close(pullback(1.0)[0], 24 * x**2, rtol=1e-14)


def test_logistic_map_cost_is_linear():
    """n = 60 has 2**59 paths; walking each would never finish. The reference is the
    derivative recurrence d_{k+1} = 4 (1 - 2 l_k) d_k in plain floats."""

    def logistic(x, n=60):
        for _ in range(n - 1):
            x = 4 * x * (1 - x)
        return x

    derivative, value = 1.0, 0.3
    for _ in range(59):
        derivative *= 4 * (1 - 2 * value)
        value = 4 * value * (1 - value)
    assert close(dk.grad(logistic)(0.3), derivative, rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-2, 2), min_size=3, max_size=3),
    st.lists(st.floats(-2, 2), min_size=4, max_size=4),
)
def test_broadcast_gradient_matches_central_differences(a, b):
    x = np.array(a).reshape(3, 1)
    y = np.array(b)

    def f(x, y):
        return dk.sum(dk.tanh(x * y) + dk.sigmoid(x - y) * y)

    gx, gy = dk.grad(f, argnums=(0, 1))(x, y)
    for arg, g, k in ((x, gx, 0), (y, gy, 1)):
        numeric = np.zeros_like(arg)
        for i in range(arg.size):
            step = np.zeros_like(arg)
            step.flat[i] = 1e-6
            plus = [x, y]
            minus = [x, y]
            plus[k], minus[k] = arg + step, arg - step
            numeric.flat[i] = (f(*plus) - f(*minus)) / 2e-6
        assert g.shape == arg.shape
        assert close(g, numeric, rtol=1e-6, atol=1e-8)


def test_matmul_mlp_gradient_matches_hand_written_backprop():
    rng = np.random.default_rng(0)
    x, w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=(3, 2))

    def loss(w1, w2):
        return dk.mean(dk.logsumexp(dk.tanh(x @ w1) @ w2, axis=1))

    g1, g2 = dk.grad(loss, argnums=(0, 1))(w1, w2)
    h1, _, h2 = hand_mlp_gradients(x, w1, np.zeros(3), w2)
    assert close(g2, h2, rtol=1e-12)
    assert close(g1, h1, rtol=1e-12)


def test_indexing_reshape_transpose_and_where():
    a = np.arange(1.0, 7.0)

    def f(a):
        m = a.reshape(2, 3).T
        return dk.sum(m[1] * m[np.array([0, 0])][:, 1]) + dk.sum(dk.where(a > 3, a, 2 * a))

    # m = [[1, 4], [2, 5], [3, 6]]: m[1] = [a1, a4] meets [a3, a3]; where() adds 2 or 1.
    expected = np.array([2.0, 4.0 + 2.0, 2.0, 2.0 + 5.0 + 1.0, 4.0 + 1.0, 1.0])
    assert close(dk.grad(f)(a), expected)


def test_closures_over_constants_and_unused_inputs():
    c = np.array([1.0, 2.0])
    assert close(dk.grad(lambda x, y: dk.sum(c * x))(np.ones(2), 3.0), c)
    assert dk.grad(lambda x, y: dk.sum(c * x), argnums=1)(np.ones(2), 3.0) == 0.0
    assert close(dk.grad(lambda x: 5.0)(np.ones(2)), np.zeros(2))


def test_vjp_and_jacobian_match_closed_forms():
    x = np.array([0.5, -1.0, 2.0])
    out, pullback = dk.vjp(lambda x: dk.sin(x) * x, x)
    u = np.array([1.0, 2.0, 3.0])
    (ct,) = pullback(u)
    assert close(ct, u * (np.cos(x) * x + np.sin(x)))
    jac = dk.jacobian(lambda x: dk.exp(x[:2]) * x[2])(x)
    assert jac.shape == (2, 3)
    assert close(jac, [[np.exp(0.5) * 2, 0, np.exp(0.5)], [0, np.exp(-1.0) * 2, np.exp(-1.0)]])


def test_hessian_of_an_array_argument():
    a = np.array([[1.0, 2.0], [0.5, -1.0]])
    hess = dk.hessian(lambda x: dk.sum(x**3) + x[0, 0] * x[1, 1])(a)
    expected = np.diag((6 * a).reshape(-1)).reshape(2, 2, 2, 2)
    expected[0, 0, 1, 1] = expected[1, 1, 0, 0] = 1.0
    assert close(hess, expected)


@pytest.mark.parametrize(
    "bad", [np.arange(3), np.array([True, False]), True, "1.0", np.arange(3).astype(np.int8)]
)
def test_non_float_inputs_raise_clear_errors(bad):
    with pytest.raises(dk.InputError, match="argument 0"):
        dk.grad(lambda x: dk.sum(x * 2.0))(bad)


def test_vector_output_needs_jacobian():
    with pytest.raises(dk.InputError, match="scalar output"):
        dk.grad(lambda x: x * 2.0)(np.ones(2))


def test_argnums_out_of_range():
    with pytest.raises(dk.InputError, match="out of range"):
        dk.grad(lambda x: x, argnums=3)(1.0)


@pytest.mark.parametrize(
    "f, x, expected",
    [
        (lambda x: dk.log(x), 0.0, math.inf),  # 1 / 0.0 in the rule: Python raises, we report
        (lambda x: 1 / x, 0.0, -math.inf),
        (lambda x: x * dk.sqrt(x), 0.0, math.nan),  # 0 * inf in the chain rule
    ],
)
def test_infinite_rules_report_inf_or_nan_instead_of_raising(f, x, expected):
    with np.errstate(all="ignore"):
        for derivative in (dk.grad(f)(x), dk.jvp(f, (x,), (1.0,))[1]):
            if math.isnan(expected):
                assert math.isnan(derivative)
            else:
                assert derivative == expected


def test_gradients_never_share_memory_with_each_other_or_the_inputs():
    """x + y hands the same cotangent array to both inputs: each gradient must own its data."""
    x, y = np.ones((3, 2)), np.ones((3, 2))
    gx, gy = dk.grad(lambda x, y: dk.sum(dk.tanh(x + y)), argnums=(0, 1))(x, y)
    assert not np.shares_memory(gx, gy)
    gx[0, 0] = 7.0
    assert gy[0, 0] == 1 - np.tanh(2.0) ** 2 and x[0, 0] == 1.0
    (g,) = dk.grad(lambda x: dk.sum(x * 1.0), argnums=(0,))(x)
    assert not np.shares_memory(g, x)


def _two_arrays(a, b):
    """sum_ij a_i^2 b_j + a_0 b_1 on a of length 3 and b of length 2 (an outer product)."""
    return dk.sum(dk.reshape(a, shape=(3, 1)) ** 2 * b) + a[0] * b[1]


def test_hessian_blocks_of_two_arguments_are_d2f_da_i_da_j_as_sympy():
    a, b = np.array([0.5, -1.25, 2.0]), np.array([1.5, -0.75])
    sa, sb = sympy.symbols("a0:3", real=True), sympy.symbols("b0:2", real=True)
    expr = sum(ai**2 * bj for ai in sa for bj in sb) + sa[0] * sb[1]
    at = {s: sympy.Rational(repr(float(v))) for s, v in zip(sa + sb, [*a, *b])}
    full = np.array(sympy.hessian(expr, sa + sb).subs(at), dtype=float)
    blocks = dk.hessian(_two_arrays, argnums=(0, 1))(a, b)
    expected = ((full[:3, :3], full[:3, 3:]), (full[3:, :3], full[3:, 3:]))
    for i, j in itertools.product(range(2), range(2)):
        assert blocks[i][j].shape == expected[i][j].shape
        assert close(blocks[i][j], expected[i][j], rtol=1e-15)
    swapped = dk.hessian(_two_arrays, argnums=(1, 0))(a, b)
    assert swapped[0][1].shape == (2, 3) and close(swapped[0][1], full[3:, :3], rtol=1e-15)


def test_jacobian_of_a_tuple_output_is_indexed_output_then_argument():
    x, y = np.array([0.3, -1.2, 2.0]), np.array([0.5, 1.5])

    def f(x, y):
        return dk.sin(x) * dk.sum(y), x[0] * y

    jac = dk.jacobian(f, argnums=(0, 1))(x, y)
    # closed forms: d out0/dx = diag(cos x) sum(y), d out0/dy = sin(x) 1^T,
    # d out1/dx = y e_0^T, d out1/dy = x_0 I
    e0 = np.array([1.0, 0.0, 0.0])
    expected = (
        (np.diag(np.cos(x)) * y.sum(), np.outer(np.sin(x), np.ones(2))),
        (np.outer(y, e0), x[0] * np.eye(2)),
    )
    for i, j in itertools.product(range(2), range(2)):
        assert jac[i][j].shape == expected[i][j].shape
        assert close(jac[i][j], expected[i][j], rtol=1e-15)
    single = dk.jacobian(f, argnums=1)(x, y)
    assert close(single[0], expected[0][1]) and close(single[1], expected[1][1])


def test_vjp_of_a_tuple_output_takes_a_tuple_of_cotangents():
    x = np.array([0.3, -1.2])
    (out0, out1), pullback = dk.vjp(lambda x: (dk.exp(x), dk.sum(x * x)), x)
    assert close(out0, np.exp(x)) and out1 == float(np.sum(x * x))
    u = np.array([2.0, -1.0])
    (ct,) = pullback((u, 3.0))
    assert close(ct, u * np.exp(x) + 3.0 * 2 * x, rtol=1e-15)
    with pytest.raises(dk.InputError, match="pass a tuple of 2 cotangents"):
        pullback(u)


def test_jacobian_inside_grad_is_differentiated_through():
    x = np.array([0.3, -0.7, 1.1])
    weights = np.arange(6.0).reshape(2, 3)

    def weighted_jacobian_sum(y):
        return dk.sum(dk.jacobian(lambda x: dk.sin(x[:2]) * y * y * dk.sum(x))(x) * weights)

    # J_kl = y^2 (cos(x_k) sum(x) [k = l] + sin(x_k)): d/dy sum(J * W) = 2 y sum(J / y^2 * W)
    unit = np.diag(np.cos(x[:2]) * x.sum(), k=0)
    unit = np.hstack([unit, np.zeros((2, 1))]) + np.sin(x[:2])[:, None]
    y = 0.9
    assert close(dk.grad(weighted_jacobian_sum)(y), 2 * y * np.sum(unit * weights), rtol=1e-14)


def test_a_float32_scalar_is_differentiated_in_float32():
    x = np.float32(0.3)
    g = dk.grad(dk.sigmoid)(x)
    exact = math.exp(-0.30000001192092896) / (1 + math.exp(-0.30000001192092896)) ** 2
    assert g.dtype == np.float32 and abs(float(g) - exact) <= 4 * 2.0**-24 * exact
