"""The Python API at its edges: argnums of every form, repeated and negative; nested transforms
that must never hand a tracer back; misuse (math.*, float(), NumPy functions) refused in one line;
NumPy code on traced values differentiated right. References: closed forms, finite differences."""

import cmath
import itertools
import math

import numpy as np
import pytest

import diffkit as dk
from diffkit.arguments import normalize_argnums
from diffkit.core import Box, TracedValueError
from diffkit.tolerance import close


def x2y(x, y):
    return x * x * y


X, Y = 2.0, 3.0
# closed forms of x2y at (X, Y): gradient (2xy, x^2), Hessian [[2y, 2x], [2x, 0]]
GRAD = (2 * X * Y, X * X)
HESS = ((2 * Y, 2 * X), (2 * X, 0.0))


# ---- argnums: one normaliser, one-line refusals ----


@pytest.mark.parametrize(
    "argnums, message",
    [
        (0.0, "argnums must be an int or a tuple of ints, not 0.0"),
        (True, "argnums must be an int or a tuple of ints, not True"),
        ((0, 1.0), "argnums must be an int or a tuple of ints, not (0, 1.0)"),
        ("0", "argnums must be an int or a tuple of ints, not '0'"),
        (None, "argnums must be an int or a tuple of ints, not None"),
        ((np.bool_(False),), "argnums must be an int or a tuple of ints"),
        ((), "argnums must be an int or a non-empty tuple of ints, not ()"),
    ],
)
@pytest.mark.parametrize(
    "transform", [dk.grad, dk.value_and_grad, dk.jacobian, dk.jacfwd, dk.hessian]
)
def test_bad_argnums_are_refused_in_one_line(transform, argnums, message):
    with pytest.raises(dk.InputError) as caught:
        transform(x2y, argnums=argnums)(X, Y)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "transform", [dk.grad, dk.value_and_grad, dk.jacobian, dk.jacfwd, dk.hessian]
)
@pytest.mark.parametrize("argnums, bad", [(3, 3), ((0, -3), -3), ([2], 2)])
def test_argnums_out_of_range_name_the_position_and_the_call(transform, argnums, bad):
    with pytest.raises(dk.InputError) as caught:
        transform(x2y, argnums=argnums)(X, Y)
    assert str(caught.value) == (
        f"argnums {bad} is out of range for a function called with 2 arguments"
    )


def test_compile_and_the_normaliser_agree_on_refusals():
    with pytest.raises(dk.InputError, match="^argnums 3 is out of range for a function called"):
        dk.compile(x2y, X, Y, argnums=3)
    with pytest.raises(dk.InputError, match="^argnums must be an int or a tuple of ints, not 0.0$"):
        dk.compile(x2y, X, Y, argnums=0.0)
    assert dk.compile(x2y, X, Y, argnums=-1).grad(X, Y) == GRAD[1]
    assert dk.compile(x2y, X, Y, argnums=(0, 0)).grad(X, Y) == (GRAD[0], GRAD[0])


def test_normaliser_resolves_negatives_and_checks_distinct_on_request():
    assert normalize_argnums(np.int64(1)) == (1,)
    assert normalize_argnums([0, -1], count=3) == (0, 2)
    assert normalize_argnums((0, -3), count=3) == (0, 0)
    with pytest.raises(dk.InputError, match="names argument 0 twice"):
        normalize_argnums((0, -3), count=3, distinct=True)
    with pytest.raises(dk.InputError, match="for a function called with 1 argument$"):
        normalize_argnums(1, count=1)


ARGNUMS = [0, 1, -1, -2, (0,), (1, 0), (0, 0), (0, -2), [1, 1], (-1, 0, 1, 1)]


@pytest.mark.parametrize("argnums", ARGNUMS)
def test_every_argnums_form_gives_the_closed_form_in_every_transform(argnums):
    many = isinstance(argnums, tuple | list)
    nums = [n % 2 for n in (argnums if many else [argnums])]
    grad = tuple(GRAD[n] for n in nums)
    hess = tuple(tuple(HESS[i][j] for j in nums) for i in nums)
    one = (lambda t: t) if many else (lambda t: t[0])
    assert dk.grad(x2y, argnums)(X, Y) == one(grad)
    assert dk.value_and_grad(x2y, argnums)(X, Y) == (X * X * Y, one(grad))
    assert dk.jacobian(x2y, argnums)(X, Y) == one(grad)
    assert dk.jacfwd(x2y, argnums)(X, Y) == one(grad)
    expected = one(tuple(one(row) for row in hess))
    assert dk.hessian(x2y, argnums)(X, Y) == expected


def test_repeated_array_argnums_give_separate_equal_gradients():
    a = np.array([0.5, -1.5, 2.0])
    ga, gb = dk.grad(lambda a, s: dk.sum(dk.sin(a)) * s, argnums=(0, 0))(a, 2.0)
    assert close(ga, 2.0 * np.cos(a)) and close(gb, 2.0 * np.cos(a))
    assert not np.shares_memory(ga, gb)
    ja, jb = dk.jacobian(lambda a: dk.sin(a), argnums=(0, -1))(a)
    assert close(ja, np.diag(np.cos(a))) and close(jb, ja)


# ---- no tracer is ever handed back to the caller ----


def _holds_a_box(result):
    if isinstance(result, Box):
        return True
    if isinstance(result, tuple | list):
        return any(_holds_a_box(r) for r in result)
    return isinstance(result, np.ndarray) and result.dtype == object


def _total(result):
    """The sum of every entry of a (nested tuple of) result(s), with diffkit's ops."""
    if isinstance(result, tuple | list):
        total = 0.0
        for r in result:
            total = total + _total(r)
        return total
    return dk.sum(result) if np.ndim(result) else result


BODIES = {
    "ignores its inputs": lambda x, y, c: 3.0,
    "returns the enclosing value": lambda x, y, c: c,
    "linear": lambda x, y, c: x * 1.0,
    "product": lambda x, y, c: x * y * x * c,
    "sum over an array": lambda x, y, c: dk.sum(x * x) * y * c,
}
INNER = {
    "grad": dk.grad, "value_and_grad": dk.value_and_grad, "jacobian": dk.jacobian,
    "jacfwd": dk.jacfwd, "hessian": dk.hessian,
}
OUTER = {
    "none": None,
    "grad": lambda g, c: dk.grad(g)(c),
    "jacfwd": lambda g, c: dk.jacfwd(g)(c),
    "jacobian": lambda g, c: dk.jacobian(g)(c),
    "hvp": lambda g, c: dk.hvp(g, (c,), (1.0,)),
    "vjp": lambda g, c: dk.vjp(g, c)[1](1.0),
    "jvp": lambda g, c: dk.jvp(g, (c,), (1.0,)),
}


@pytest.mark.parametrize("outer", OUTER)
@pytest.mark.parametrize("inner", INNER)
def test_no_tracer_escapes_any_nesting_argnums_or_body(outer, inner):
    escaped = []
    for (name, body), argnums, x in itertools.product(
        BODIES.items(), ARGNUMS, (2.0, np.array([1.0, -2.0]))
    ):
        def g(c, body=body, argnums=argnums, x=x):
            return INNER[inner](lambda x, y: body(x, y, c), argnums)(x, Y)

        try:
            result = g(1.5) if outer == "none" else OUTER[outer](lambda c: _total(g(c)), 1.5)
        except dk.InputError as error:  # an array body under grad: a vector output
            assert "scalar output" in str(error)
            continue
        if _holds_a_box(result):
            escaped.append((name, argnums, np.ndim(x), result))
    assert escaped == []


def test_vjp_and_value_and_grad_of_a_function_ignoring_its_input_return_plain_numbers():
    out, pullback = dk.vjp(lambda x, y: (3.0, y), 1.0, 2.0)
    assert out == (3.0, 2.0) and pullback((1.0, 5.0)) == (0.0, 5.0)
    assert dk.value_and_grad(lambda x, y: y, argnums=(1, 1))(1.0, 2.0) == (2.0, (1.0, 1.0))


def test_list_outputs_are_several_outputs_in_every_transform():
    # f(x) = [x^2, 3x] at x = 2: derivatives [4, 3]
    def f(x):
        return [x * x, 3.0 * x]

    out, pullback = dk.vjp(f, 2.0)
    assert out == [4.0, 6.0] and pullback([1.0, 10.0]) == (4.0 + 30.0,)
    assert dk.jvp(f, (2.0,), (1.0,)) == ([4.0, 6.0], [4.0, 3.0])
    assert dk.jacobian(f)(2.0) == [4.0, 3.0] and dk.jacfwd(f)(2.0) == [4.0, 3.0]
    assert dk.jacobian(f, argnums=(0,))(2.0) == [(4.0,), (3.0,)]
    with pytest.raises(dk.InputError, match="^f returned a list of 2: pass a list of 2 cot"):
        pullback(1.0)


# ---- what grad needs of f's output ----


def test_grad_of_a_tuple_output_says_use_jacobian():
    with pytest.raises(dk.InputError) as caught:
        dk.grad(lambda x: (x, 2 * x))(1.0)
    assert str(caught.value) == (
        "grad needs a scalar output; f returned a tuple of 2: use jacobian"
    )


@pytest.mark.parametrize(
    "f, fragment",
    [
        (lambda x: x * np.ones(3), "got shape (3,); use jacobian or vjp"),
        (lambda x: None, "f returned a NoneType: return a float"),
        (lambda x: "x", "f returned a str: return a float"),
        (lambda x: [x], "f returned a list of 1: use jacobian"),
    ],
)
def test_grad_of_a_non_scalar_output_is_refused_in_one_line(f, fragment):
    for transform in (dk.grad, dk.value_and_grad):
        with pytest.raises(dk.InputError) as caught:
            transform(f)(1.0)
        assert fragment in str(caught.value) and "\n" not in str(caught.value)


# ---- misuse: a traced value where a plain number is needed ----


@pytest.mark.parametrize(
    "misuse, what",
    [
        (math.exp, "float() or a math-module function"),
        (float, "float() or a math-module function"),
        (int, "int()"),
        (cmath.exp, "complex() or a cmath-module function"),
        (lambda x: list(range(x)), "an index, a shape or range()"),
    ],
)
@pytest.mark.parametrize(
    "run, transform",
    [
        (lambda f: dk.grad(f)(1.0), "reverse mode"),
        (lambda f: dk.jvp(f, (1.0,), (1.0,)), "forward mode"),
        (lambda f: dk.hessian(f)(1.0), "mode"),
    ],
)
def test_math_functions_on_traced_values_are_refused_in_one_line(misuse, what, run, transform):
    with pytest.raises(TracedValueError) as caught:
        run(misuse)
    message = str(caught.value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, dk.DiffkitError)
    assert message.startswith(f"{what} cannot see through a value traced by ")
    assert transform in message and "\n" not in message
    if what != "an index, a shape or range()":
        assert "use dk.exp" in message and "not math.*" in message


# ---- NumPy code on traced values ----

RNG = np.random.default_rng(7)
A = RNG.normal(size=(3, 4))
C = RNG.normal(size=4)


def numpy_loss(x):
    """A loss written only with NumPy functions and operators."""
    z = np.tanh(A @ x) + np.exp(-np.abs(x[:3])) * np.float64(2.0)
    w = np.maximum(z, 0.1) ** 2 / (1.0 + np.sqrt(np.cosh(z)))
    folded = np.reshape(np.transpose(np.reshape(x, (2, 2))), 4)
    return (
        np.sum(np.where(w > 0.5, w, -w)) + np.mean(C * x) - np.max(np.sin(x) - np.cos(x))
        + np.dot(C, x) + np.sum(folded * C) + np.log(np.sum(x * x)) + np.sum(np.negative(x))
        + np.tan(x[0]) * np.sinh(x[1]) + np.sum(np.subtract(C, x) / np.true_divide(3.0, C + 5))
        + np.power(np.sum(np.multiply(C, x) ** 2), 0.5) + np.sum(np.add(C, x) * np.positive(x))
    )


def _central(f, x, h=1e-5):
    """Central differences of f at x, entry by entry (an independent reference)."""
    out = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        out[k] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def test_numpy_functions_on_traced_values_differentiate_like_finite_differences():
    x = RNG.normal(size=4)
    assert close(dk.grad(numpy_loss)(x), _central(numpy_loss, x), rtol=1e-8)
    assert close(dk.jacfwd(numpy_loss)(x), _central(numpy_loss, x), rtol=1e-8)
    hess = dk.hessian(numpy_loss)(x)
    columns = [_central(lambda v, k=k: dk.grad(numpy_loss)(v)[k], x) for k in range(4)]
    assert close(hess, np.array(columns), rtol=1e-6, atol=1e-7)


def test_arrays_and_numpy_scalars_on_the_left_of_a_traced_value_stay_traced():
    a = np.array([1.0, -2.0, 0.5])
    seen = []

    def f(x):
        products = (a * x, a + x, a - x, a / x, np.abs(a) ** x, np.float64(2.0) * x, a @ x)
        seen.extend(isinstance(p, Box) for p in products)
        return sum(dk.sum(p) for p in products)

    x = np.array([0.7, 1.3, 2.1])
    gradient = dk.grad(f)(x)
    assert seen == [True] * 7
    assert close(gradient, _central(f, x), rtol=1e-8)
    # float64 scalars either side of a float tracer: d/dx (2x + 3/x - x**2) = 2 - 3/x^2 - 2x
    g = dk.grad(lambda x: np.float64(2.0) * x + np.float64(3.0) / x - x ** np.float64(2.0))(1.5)
    assert close(g, 2 - 3 / 1.5**2 - 3.0, rtol=1e-15)


@pytest.mark.parametrize(
    "f, name",
    [
        (lambda x: np.sum(np.sort(x)), "np.sort"),
        (lambda x: np.floor(x), "np.floor"),
        (lambda x: np.add.outer(x, x), "np.add.outer"),  # not a reduction: see below
        (lambda x: np.sum(np.concatenate([x, x])), "np.concatenate"),
        (lambda x: np.linalg.norm(x), "np.linalg.norm"),
        (lambda x: np.prod(x), "np.prod"),
    ],
)
def test_numpy_functions_without_a_primitive_are_refused_in_one_line(f, name):
    for run in (lambda: dk.grad(f)(np.ones(3)), lambda: dk.jvp(f, (np.ones(3),), (np.ones(3),))):
        with pytest.raises(TracedValueError) as caught:
            run()
        message = str(caught.value)
        assert message.startswith(f"{name} is not differentiable in diffkit; use diffkit's")
        assert "\n" not in message


def test_numpy_reductions_run_as_sum_and_max():
    # NumPy leaks the arguments of a reduction whose override raises (numpy#31677), so
    # np.add.reduce and np.maximum.reduce are answered, not refused.
    x = np.array([[0.5, -1.0, 2.0], [1.5, 3.0, -0.5]])
    gradient = dk.grad(lambda x: np.sum(np.add.reduce(x * x, 1)) + np.maximum.reduce(x, None))(x)
    expected = 2 * x
    expected[1, 1] += 1.0  # the one maximum, 3.0
    assert close(gradient, expected, rtol=1e-15)


def test_numpy_keywords_that_cannot_apply_to_traced_values_are_refused():
    with pytest.raises(TracedValueError, match=r"^np.exp cannot take out= for a value traced"):
        dk.grad(lambda x: np.sum(np.exp(x, out=np.empty(3))))(np.ones(3))
    with pytest.raises(TracedValueError, match=r"^np.sum cannot take dtype= on traced values"):
        dk.grad(lambda x: np.sum(x, dtype=np.float32))(np.ones(3))


def test_numpy_shape_queries_and_comparisons_see_the_primal():
    def f(x):
        assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
        mask = np.greater(x, 0.0) & np.isfinite(x)
        assert mask.dtype == bool and not isinstance(mask, Box)
        return np.sum(np.where(mask, x * x, np.zeros_like(x)))

    x = np.array([[1.0, -2.0, 3.0], [-0.5, 0.25, 4.0]])
    assert close(dk.grad(f)(x), np.where(x > 0, 2 * x, 0.0))
