"""The catalog against independent references: the article's numbers, SymPy's derivatives of
the same functions traced into SymPy, hand-written float recurrences and Baydin's closed forms."""

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.errors import InputError
from diffkit.experiments import catalog as cat
from diffkit.tolerance import close


def _sympy_gradient(case):
    symbols = sympy.symbols(case.variables, real=True)
    expr = case.function(*symbols)
    at = {s: sympy.Rational(p) for s, p in zip(symbols, case.point)}
    value = float(sympy.N(expr.subs(at), 30))
    return value, [float(sympy.N(sympy.diff(expr, s).subs(at), 30)) for s in symbols]


def test_sigmoid_neuron_is_the_articles():
    case = cat.get("sigmoid_neuron")
    assert case.point == (1.0, 0.0, 0.0)
    value, gradient = dk.value_and_grad(case.function, argnums=(0, 1, 2))(*case.point)
    assert value == 0.5 and gradient == (0.0, 0.25, 0.25)
    assert case.expected == cat.Expected(0.5, (0.0, 0.25, 0.25))


def test_sum_product_is_the_articles():
    case = cat.get("sum_product")
    assert dk.grad(case.function, argnums=(0, 1, 2))(*case.point) == (1.0, 1.0, 2.0)
    # dL/du = w3 = 1: the derivative through the intermediate u, by the chain rule
    assert dk.grad(lambda u, w3: u * w3)(2.0, 1.0) == 1.0


# leaky_relu_wide's nested Piecewise costs SymPy ~15 s; it is checked against NumPy below.
SYMPY_CASES = [c for c in cat.catalog(chain_depth=3) if c.name != "leaky_relu_wide"]


@pytest.mark.parametrize("case", SYMPY_CASES, ids=lambda c: c.name)
def test_every_case_matches_sympy_and_its_expected_values(case):
    value, gradient = _sympy_gradient(case)
    argnums = tuple(range(len(case.variables)))
    ours_value, ours = dk.value_and_grad(case.function, argnums=argnums)(*case.point)
    assert close(ours_value, value, rtol=1e-13)
    assert close(ours, gradient, rtol=1e-11, atol=1e-15)
    if case.expected is not None:
        assert close(value, case.expected.value, rtol=1e-14)
        assert close(gradient, case.expected.gradient, rtol=1e-12, atol=1e-15)


def test_the_article_depth_chains_are_in_the_catalog():
    names = [c.name for c in cat.catalog()]
    for activation in cat.ACTIVATIONS:
        assert f"chain_{activation}_10" in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("activation", cat.ACTIVATIONS)
def test_chain_is_the_recurrence_in_floats(activation):
    scalar = {
        "sigmoid": lambda h: 1 / (1 + math.exp(-h)),
        "tanh": math.tanh,
        "relu": lambda h: max(h, 0.0),
        "leaky_relu": lambda h: h if h > 0 else 0.01 * h,
        "softplus": lambda h: math.log1p(math.exp(h)),
        "elu": lambda h: h if h > 0 else math.expm1(h),
        "silu": lambda h: h / (1 + math.exp(-h)),
    }[activation]
    weights = [0.7, -1.3, 2.1, 0.4, -0.2]
    y = 1.0
    for w in weights:
        y = scalar(w * y)
    case = cat.get(f"chain_{activation}_{len(weights)}")
    assert case.variables == ("x", "w1", "w2", "w3", "w4", "w5")
    assert close(case.function(1.0, *weights), (3 - y) ** 2, rtol=1e-14)


def _wide_numpy(x, *w):
    w = np.array(w)

    def leaky(z):
        return np.where(z > 0, z, 0.01 * z)

    first = leaky(w[0:3] * x)
    second = leaky(w[3:12].reshape(3, 3) @ first)
    return float((3 - w[12:15] @ second) ** 2)


def test_leaky_relu_wide_is_a_1_3_3_1_network():
    case = cat.get("leaky_relu_wide")
    assert len(case.variables) == 16
    assert close(case.function(*case.point), _wide_numpy(*case.point), rtol=1e-13)
    gradient = dk.grad(case.function, argnums=tuple(range(16)))(*case.point)
    step = 1e-6
    for k in range(16):
        plus, minus = list(case.point), list(case.point)
        plus[k] += step
        minus[k] -= step
        numeric = (_wide_numpy(*plus) - _wide_numpy(*minus)) / (2 * step)
        assert close(gradient[k], numeric, rtol=1e-6, atol=1e-8)


def test_logistic_map_matches_baydin_closed_forms():
    x = sympy.Symbol("x")
    l4 = cat.logistic_function(4)(x)
    assert sympy.expand(l4 - cat.baydin_l4(x)) == 0
    assert sympy.expand(sympy.diff(l4, x) - cat.baydin_derivative_l4(x)) == 0
    case = cat.get("logistic_map_4")
    assert close(dk.grad(case.function)(0.3), case.expected.gradient[0], rtol=1e-12)


def test_sigmoid_neuron_step_table_is_read_off_the_tape():
    steps, paths, gradient = cat.chain_rule_table(cat.get("sigmoid_neuron"))
    assert [s.name for s in steps] == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert [s.operation for s in steps] == ["w * x", "h1 + b", "-h2", "exp(h3)", "1 + h4",
                                            "1 / h5"]
    assert [s.value for s in steps] == [0, 0, 0, 1, 2, 0.5]
    local = {(s.name, name): d for s in steps for name, d in s.local}
    assert local[("h1", "x")] == 0.0  # dh1/dx = w = 0
    assert local[("h1", "w")] == 1.0  # dh1/dw = x = 1
    assert local[("h2", "h1")] == 1.0 and local[("h2", "b")] == 1.0
    assert local[("h3", "h2")] == -1.0
    assert local[("h4", "h3")] == 1.0 and local[("h5", "h4")] == 1.0
    assert local[("h6", "h5")] == -0.25  # -1/h5^2
    (path,) = paths["w"]
    assert path.nodes == ("w", "h1", "h2", "h3", "h4", "h5", "h6")
    assert path.product == 0.25
    assert gradient == {"x": 0.0, "w": 0.25, "b": 0.25}


def test_xor_graph_paths_multiply_along_and_add_across():
    _, paths, gradient = cat.chain_rule_table(cat.get("xor_graph"))
    assert sorted(p.product for p in paths["x"]) == [-1.0, 1.0]
    assert gradient == {"x": 0.0, "y": 0.0}


@pytest.mark.parametrize("name", ["xor_network", "leaky_relu_wide", "chain_tanh_4",
                                  "logistic_map_4"])
def test_path_sums_equal_reverse_mode(name):
    case = cat.get(name)
    _, _, gradient = cat.chain_rule_table(case)
    ours = dk.grad(case.function, argnums=tuple(range(len(case.variables))))(*case.point)
    assert close([gradient[v] for v in case.variables], ours, rtol=1e-12, atol=1e-15)


def test_too_many_paths_is_refused():
    with pytest.raises(InputError, match="paths"):
        cat.chain_rule_table(cat.get("logistic_map_12"))


@pytest.mark.parametrize("name", ["nope", "chain_foo_3", "chain_relu_0", "logistic_map_0",
                                  "chain_relu_10001"])
def test_unknown_names_raise_input_error(name):
    with pytest.raises(InputError):
        cat.get(name)


def test_cases_are_frozen():
    with pytest.raises(FrozenInstanceError):
        cat.get("sum_product").point = (0.0, 0.0, 0.0)


def test_list_prints_every_case(capsys):
    assert cat.run_list(None) == 0
    out = capsys.readouterr().out
    for case in cat.catalog():
        assert case.name in out
    assert "x, w1..w10" in out
