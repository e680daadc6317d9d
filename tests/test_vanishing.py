"""The vanishing study against independent references: derivatives written by hand in NumPy,
float recurrences, a dense grid for sup f', SymPy at small depth and the 1 - 2^-depth law."""

import math

import numpy as np
import pytest

from diffkit.experiments import vanishing as van
from diffkit.experiments.catalog import ACTIVATIONS
from diffkit.tolerance import close


def _sigmoid(h):
    return 1 / (1 + np.exp(-h))


# f'(h) written by hand, independently of diffkit's VJP rules
DERIVATIVES = {
    "sigmoid": lambda h: _sigmoid(h) * (1 - _sigmoid(h)),
    "tanh": lambda h: 1 - np.tanh(h) ** 2,
    "relu": lambda h: (h > 0).astype(float),
    "leaky_relu": lambda h: np.where(h > 0, 1.0, 0.01),
    "softplus": _sigmoid,
    "elu": lambda h: np.where(h > 0, 1.0, np.exp(np.minimum(h, 0))),
    "silu": lambda h: _sigmoid(h) * (1 + h * (1 - _sigmoid(h))),
}
FUNCTIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
    "leaky_relu": lambda h: np.where(h > 0, h, 0.01 * h),
    "softplus": lambda h: np.log1p(np.exp(h)),
    "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0))),
    "silu": lambda h: h * _sigmoid(h),
}
INITS = 2000
DEPTH = 12


@pytest.fixture(scope="module")
def study():
    return van.run(quick=True, inits=INITS, max_depth=DEPTH)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_derivative_sup_matches_a_dense_grid(activation):
    grid = np.linspace(-30, 30, 600_001)
    sup = van.derivative_sup(activation)
    assert np.max(DERIVATIVES[activation](grid)) <= sup * (1 + 1e-12)
    assert close(np.max(DERIVATIVES[activation](grid)), sup, rtol=1e-8)


def test_derivative_sup_values():
    assert van.derivative_sup("sigmoid") == 0.25
    for name in ("tanh", "relu", "leaky_relu", "softplus", "elu"):
        assert van.derivative_sup(name) == 1.0
    assert close(van.derivative_sup("silu"), 1.0998393, rtol=1e-7)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_products_match_a_hand_written_recurrence(activation):
    weights = np.random.default_rng(7).normal(size=(8, 5))
    y, product, expected = np.ones(5), np.ones(5), []
    for w in weights:
        h = w * y
        product = product * DERIVATIVES[activation](h)
        expected.append(product)
        y = FUNCTIONS[activation](h)
    assert close(van.chain_products(activation, weights), np.array(expected), rtol=1e-13)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_layer_gradients_match_finite_differences_and_sympy(activation):
    weights = np.random.default_rng(3).normal(size=(3, 4))
    grads = van.layer_gradients(activation, weights)
    assert close(grads[0], van.sympy_dw1(activation, weights), rtol=1e-12, atol=1e-300)

    def loss(ws):
        y = np.ones(ws.shape[1])
        for w in ws:
            y = FUNCTIONS[activation](w * y)
        return (3 - y) ** 2

    for i in range(3):
        step = np.zeros_like(weights)
        step[i] = 1e-6
        numeric = (loss(weights + step) - loss(weights - step)) / 2e-6
        assert close(grads[i], numeric, rtol=1e-6, atol=1e-9)


def test_json_keys_are_the_issues(study):
    assert study["inits"] == INITS
    for activation in ACTIVATIONS:
        entry = study["activations"][activation]
        for key in ("depths", "bound", "product_median", "product_p05", "product_p95",
                    "zero_fraction", "layer_grads_depth10"):
            assert key in entry
        assert entry["depths"] == list(range(1, DEPTH + 1))
        assert len(entry["layer_grads_depth10"]) == 10


def test_sigmoid_products_stay_under_the_bound(study):
    sigmoid = study["activations"]["sigmoid"]
    assert sigmoid["bound"] == [0.25**d for d in range(1, DEPTH + 1)]
    assert all(m < b for m, b in zip(sigmoid["product_abs_max"], sigmoid["bound"]))
    assert all(m < b for m, b in zip(sigmoid["product_median"], sigmoid["bound"]))


def test_relu_dies_as_one_minus_two_to_the_minus_depth(study):
    zero = np.array(study["activations"]["relu"]["zero_fraction"])
    expected = 1 - 0.5 ** np.arange(1, DEPTH + 1)
    sigma = np.sqrt(expected * (1 - expected) / INITS)
    assert np.all(np.abs(zero - expected) <= 5 * sigma + 1e-12)


def test_smooth_and_leaky_activations_are_never_exactly_zero(study):
    for name in ("sigmoid", "tanh", "leaky_relu", "softplus", "elu", "silu"):
        assert max(study["activations"][name]["zero_fraction"]) == 0.0


def test_sympy_cross_check_is_at_rounding_level(study):
    for entry in study["activations"].values():
        assert entry["closed_form_rel_error_depth10"] < 1e-12
        for check in entry["sympy_check"]:
            assert check["reverse_rel_error"] < 1e-12
            assert check["closed_form_rel_error"] < 1e-12


def test_quantiles_are_ordered(study):
    for entry in study["activations"].values():
        assert np.all(np.array(entry["product_p05"]) <= np.array(entry["product_median"]))
        assert np.all(np.array(entry["product_median"]) <= np.array(entry["product_p95"]))


def test_the_cure(study):
    models = {m["name"]: m for m in study["cure"]["models"]}
    assert models["leaky_relu_wide"]["zero_entry_fraction"] == 0.0
    assert models["chain_leaky_relu_3"]["zero_entry_fraction"] == 0.0
    dead = models["chain_relu_3"]["all_zero_fraction"]
    assert abs(dead - 7 / 8) < 5 * math.sqrt(7 / 64 / INITS)
    assert models["relu_wide"]["all_zero_fraction"] < dead
