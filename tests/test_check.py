"""check_grad / check_jacobian / check_hessian: a claimed derivative judged against SymPy's
(traced f: plain NumPy code through diffkit's dispatch) or numerical differences (black box),
with the wrong entries named; and plain NumPy functions under dk.grad."""

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.testing import assert_grad_correct

# ---- SciPy's Rosenbrock trio (scipy.optimize.rosen, rosen_der, rosen_hess), plain NumPy ----


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0)


def rosen_der(x):
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    der = np.zeros_like(x)
    der[1:-1] = 200 * (xm - xm_m1**2) - 400 * (xm_p1 - xm**2) * xm - 2 * (1 - xm)
    der[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
    der[-1] = 200 * (x[-1] - x[-2] ** 2)
    return der


def rosen_hess(x):
    hess = np.diag(-400 * x[:-1], 1) - np.diag(400 * x[:-1], -1)
    diagonal = np.zeros_like(x)
    diagonal[0] = 1200 * x[0] ** 2 - 400 * x[1] + 2
    diagonal[-1] = 200
    diagonal[1:-1] = 202 + 1200 * x[1:-1] ** 2 - 400 * x[2:]
    return hess + np.diag(diagonal)


X0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])


def sympy_rosen():
    """The Rosenbrock function of 5 symbols, its gradient and Hessian, from SymPy."""
    xs = sympy.symbols("x0:5", real=True)
    f = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(4))
    at = dict(zip(xs, [sympy.Rational(str(v)) for v in X0]))
    gradient = [float(sympy.diff(f, x).subs(at)) for x in xs]
    hessian = [[float(sympy.diff(f, a, b).subs(at)) for b in xs] for a in xs]
    return np.array(gradient), np.array(hessian)


def test_plain_numpy_function_differentiates_as_sympy_says():
    gradient, hessian = sympy_rosen()
    assert np.allclose(dk.grad(rosen)(X0), gradient, rtol=1e-13, atol=0)
    assert np.allclose(dk.hessian(rosen)(X0), hessian, rtol=1e-12, atol=0)
    assert np.allclose(dk.jacfwd(rosen)(X0), gradient, rtol=1e-13, atol=0)
    w = np.array([0.5, -1.0, 2.0])
    # ndarray * traced, np.tanh, np.dot and a reduction with axis on a traced value
    f = lambda x: np.sum(np.tanh(w * x)) + np.dot(x, x) + np.sum(np.reshape(x, (3, 1)), axis=0)[0]
    x = np.array([0.3, -0.4, 1.1])
    expected = w * (1 - np.tanh(w * x) ** 2) + 2 * x + 1
    assert np.allclose(dk.grad(f)(x), expected, rtol=1e-14, atol=1e-15)


def test_numpy_function_diffkit_cannot_differentiate_is_named():
    with pytest.raises(dk.TracedValueError, match=r"^np\.sort is not differentiable in diffkit"):
        dk.grad(lambda x: np.sum(np.sort(x)))(X0)


def test_right_scipy_gradient_agrees_against_the_symbolic_reference():
    result = dk.check_grad(rosen, rosen_der, X0)
    gradient, _ = sympy_rosen()
    assert result.agree and result.reference == "symbolic" and not result.wrong
    assert np.allclose([e.expected for e in result.entries], gradient, rtol=1e-15, atol=0)
    assert {"symbolic", "reverse", "forward", "central", "complex_step"} <= set(result.support)
    assert [e.label for e in result.entries] == [f"x[{k}]" for k in range(5)]


def test_one_wrong_component_is_named_with_its_error():
    def wrong(x):
        der = rosen_der(x)
        der[2] += 0.5
        return der

    result = dk.check_grad(rosen, wrong, X0)
    gradient, _ = sympy_rosen()
    assert not result.agree
    assert [(e.argument, e.index) for e in result.wrong] == [("x", (2,))]
    entry = result.wrong[0]
    assert entry.claimed == wrong(X0)[2]
    assert math.isclose(entry.expected, gradient[2], rel_tol=1e-15)
    assert math.isclose(entry.error, 0.5, rel_tol=1e-9)
    assert {"symbolic", "central", "complex_step"} <= set(entry.support)
    table = result.table()
    assert "x[2]" in table and "WRONG" in table and "WRONG in 1 of 5 entries" in table
    assert result.taylor.wrong and 0.8 < result.taylor.order < 1.2


def test_a_hundred_parameter_numpy_function_with_one_wrong_entry():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=100), rng.normal(size=100)
    f = lambda x: np.sum(np.tanh(x * w) ** 2) + np.log(1 + np.sum(x * x))

    def claimed(x):
        t = np.tanh(x * w)
        g = 2 * t * (1 - t * t) * w + 2 * x / (1 + np.sum(x * x))
        g[17] *= 1.001
        return g

    result = dk.check_grad(f, claimed, x)
    assert [e.index for e in result.wrong] == [(17,)]
    t = np.tanh(x[17] * w[17])
    exact = 2 * t * (1 - t * t) * w[17] + 2 * x[17] / (1 + np.sum(x * x))
    assert math.isclose(result.wrong[0].expected, exact, rel_tol=1e-12)
    assert math.isclose(result.wrong[0].relative, 1e-3, rel_tol=1e-6)


def test_black_box_gradient_is_judged_by_numerical_differences_and_taylor():
    def f(x, y):  # math.* cannot see a traced value: f is a black box
        return math.exp(x) * math.sin(y) + x * y**3

    right = lambda x, y: (math.exp(x) * math.sin(y) + y**3, math.exp(x) * math.cos(y)
                          + 3 * x * y**2)
    wrong = lambda x, y: (math.exp(x) * math.sin(y) + y**3, math.exp(x) * math.cos(y))
    good = dk.check_grad(f, right, 0.4, 1.3)
    assert good.agree and good.reference == "numerical" and "central" in good.support
    assert good.methods["complex_step"].applicable is False  # math.sin refuses complex input
    assert 1.8 < good.taylor.order < 2.2 and not good.taylor.wrong
    bad = dk.check_grad(f, wrong, 0.4, 1.3)
    assert [e.label for e in bad.wrong] == ["y"]
    assert math.isclose(bad.wrong[0].expected, math.exp(0.4) * math.cos(1.3) + 3 * 0.4 * 1.69,
                        rel_tol=1e-8)
    assert 0.8 < bad.taylor.order < 1.2 and bad.taylor.wrong


def test_black_box_that_takes_complex_input_uses_the_complex_step():
    weights = np.arange(1.0, 5.0) ** 2

    def f(x):  # np.sort has no derivative in diffkit; on complex input it sorts by real part
        return np.sum(np.sort(x) * weights)

    x = np.array([0.3, -1.2, 2.5, 0.9])
    order = np.argsort(x)
    exact = np.empty(4)
    exact[order] = weights
    result = dk.check_grad(f, lambda x: exact, x)
    assert result.agree and result.reference == "numerical"
    assert result.methods["complex_step"].applicable and result.methods["complex_step"].agrees
    wrong = exact.copy()
    wrong[1] = 0.0
    assert [e.index for e in dk.check_grad(f, lambda x: wrong, x).wrong] == [(1,)]


def test_gradient_of_several_arguments_as_tuple_or_flat_vector():
    f = lambda w, b: dk.sigmoid(2.0 * w + b)
    s = 1 / (1 + math.exp(-(2 * 0.3 - 0.1)))
    d = s * (1 - s)
    assert dk.check_grad(f, lambda w, b: (2 * d, d), 0.3, -0.1).agree
    flat = dk.check_grad(f, lambda w, b: np.array([2 * d, 3 * d]), 0.3, -0.1)
    assert [e.argument for e in flat.wrong] == ["b"]  # names come from f's signature


def test_jacobian_traced_and_black_box_name_the_wrong_output_and_input():
    f = lambda x, y: np.array([x * y, np.sin(x) + y**2, np.exp(x - y)])
    right = lambda x, y: (np.array([y, np.cos(x), np.exp(x - y)]),
                          np.array([x, 2 * y, -np.exp(x - y)]))
    wrong = lambda x, y: (np.array([y, np.cos(x), np.exp(x - y)]),
                          np.array([x, y, -np.exp(x - y)]))
    black_box = lambda x, y: [x * y, math.sin(x) + y**2, math.exp(x - y)]
    for function, source in ((f, "symbolic"), (black_box, "numerical")):
        assert dk.check_jacobian(function, right, 0.3, 1.2).agree
        result = dk.check_jacobian(function, wrong, 0.3, 1.2)
        assert result.reference == source
        assert [(e.output, e.argument) for e in result.wrong] == [((1,), "y")]
        assert math.isclose(result.wrong[0].expected, 2 * 1.2, rel_tol=1e-8)
        assert 0.8 < result.taylor.order < 1.2


def test_hessian_right_and_one_wrong_pair():
    _, hessian = sympy_rosen()
    good = dk.check_hessian(rosen, rosen_hess, X0)
    assert good.agree and good.reference == "symbolic"
    assert np.allclose(np.reshape([e.expected for e in good.entries], (5, 5)), hessian,
                       rtol=1e-14, atol=0)
    assert 3.5 < good.taylor.order < 4.5

    def wrong(x):
        h = rosen_hess(x)
        h[1, 2] += 1.0
        h[2, 1] += 1.0
        return h

    for function in (rosen, lambda x: float(rosen(np.array([float(v) for v in x])))):
        bad = dk.check_hessian(function, wrong, X0)
        assert [(e.index, e.index2) for e in bad.wrong] == [((1,), (2,)), ((2,), (1,))]
        assert 1.5 < bad.taylor.order < 2.5


def test_a_kink_accepts_any_value_between_the_one_sided_derivatives():
    for f in (dk.relu, lambda x: max(x, 0.0)):  # traced, and a Python branch (consensus)
        inside = dk.check_grad(f, lambda x: 0.25, 0.0)
        assert inside.agree and inside.entries[0].verdict == "convention"
        assert not dk.check_grad(f, lambda x: 1.5, 0.0).agree
    leaky = dk.check_grad(lambda x: dk.leaky_relu(x), lambda x: 1.0, -2.0)  # the article's bug
    assert [e.label for e in leaky.wrong] == ["x"] and leaky.wrong[0].expected == 0.01


def test_to_dict_is_strict_json_even_for_a_non_finite_claim():
    result = dk.check_grad(rosen, lambda x: np.full(5, np.inf), X0)
    out = result.to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text)["agree"] is False
    assert out["wrong"] == [f"x[{k}]" for k in range(5)]
    assert out["entries"][0]["claimed"] is None
    assert any("written as null" in note for note in out["notes"])
    assert "|" in result._repr_markdown_()


def test_assert_grad_correct_message_is_the_table():
    with pytest.raises(AssertionError) as error:
        assert_grad_correct(rosen, lambda x: rosen_der(x) * np.array([1, 1, 1, 1, 2.0]), X0)
    message = str(error.value)
    assert message.startswith("the claimed gradient is WRONG in 1 of 5 entries")
    assert "x[4]" in message
    assert assert_grad_correct(rosen, rosen_der, X0).agree


def test_claims_of_the_wrong_shape_or_a_vector_f_are_refused_in_one_line():
    with pytest.raises(dk.InputError, match=r"expected shape \(5,\)") as error:
        dk.check_grad(rosen, lambda x: rosen_der(x)[:4], X0)
    assert "\n" not in str(error.value)
    with pytest.raises(dk.InputError, match="scalar-valued"):
        dk.check_grad(lambda x: x * 2, lambda x: x, X0)
    with pytest.raises(dk.InputError, match="not finite at the point"):
        dk.check_grad(lambda x: dk.log(x), lambda x: 1 / x, -1.0)


def test_readme_example_prints_what_its_comment_says():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Check anyone's derivative", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # our own documentation, not user text
    printed = out.getvalue().strip()
    assert printed == re.search(r"print\(result.*# (.*)", block).group(1).strip()
    assert printed == "False ['x[4]']"
