"""The vanishing-gradient study: products of activation derivatives along single-unit chains,
their bounds, per-layer gradients at the article's depth 10, and the leaky-ReLU/width cure."""

from __future__ import annotations

import time

import numpy as np
import sympy

import diffkit as dk
from diffkit.experiments.catalog import (
    ACTIVATIONS,
    ARTICLE_DEPTH,
    TARGET,
    WIDE_WEIGHTS,
    chain_function,
    leaky_relu_wide,
    relu_wide,
)

ORDER = 20  # the study's place in the report (diffkit.experiments.STUDIES)
SEED = 0
X = 1.0
FULL = {"inits": 10_000, "max_depth": 50, "sympy_depths": (1, 2, 3, 4), "sympy_inits": 5}
QUICK = {"inits": 1_000, "max_depth": 20, "sympy_depths": (1, 2), "sympy_inits": 3}
CURE_DEPTH = 3  # leaky_relu_wide has three weight layers: compare with chains of three weights


def derivative_sup(activation: str) -> float:
    """Return sup over the reals of f'(x) for an activation, from SymPy (piece by piece).

    Where SymPy finds no closed form (silu) the critical point of f' is solved numerically.

    Example:
        >>> derivative_sup("sigmoid")
        0.25
    """
    x = sympy.Symbol("x", real=True)
    derivative = sympy.diff(getattr(dk, activation)(x), x)
    if isinstance(derivative, sympy.Piecewise):
        pieces = derivative.as_expr_set_pairs(sympy.S.Reals)
    else:
        pieces = [(derivative, sympy.S.Reals)]
    return float(max(_piece_sup(expr, x, domain) for expr, domain in pieces))


def _piece_sup(expr, x, domain):
    from sympy.calculus.util import maximum

    if not expr.has(x):
        return sympy.N(expr, 30)
    try:
        return sympy.N(maximum(expr, x, domain), 30)
    except NotImplementedError:
        pass
    # f' is smooth here: its sup is at a root of f'' or at an end (a limit at infinity).
    candidates = [sympy.limit(expr, x, end) for end in (domain.inf, domain.sup)]
    slope = sympy.diff(expr, x)
    grid = np.linspace(float(max(domain.inf, -20)), float(min(domain.sup, 20)), 81)
    values = sympy.lambdify(x, slope, "mpmath")
    for left, right in zip(grid[:-1], grid[1:]):
        if values(left) * values(right) < 0:
            root = sympy.nsolve(slope, x, (left, right), solver="bisect", prec=40)
            candidates.append(expr.subs(x, root))
    return max(sympy.N(c, 30) for c in candidates)


def activation_derivative(activation: str, h: np.ndarray) -> np.ndarray:
    """Return f'(h) entry by entry, from diffkit's reverse mode (the VJP rule of f).

    Example:
        >>> activation_derivative("relu", np.array([-1.0, 2.0]))
        array([0., 1.])
    """
    act = getattr(dk, activation)
    return dk.grad(lambda v: dk.sum(act(v)))(h)


def chain_products(activation: str, weights: np.ndarray, x: float = X) -> np.ndarray:
    """Return prod_(i <= d) f'(h_i) for every depth d and init: shape (depth, inits).

    `weights` has shape (depth, inits); h_i = w_i y_(i-1), y_0 = x, y_i = f(h_i).

    Example:
        >>> chain_products("relu", np.array([[2.0, -1.0], [1.0, 1.0]]))
        array([[1., 0.],
               [1., 0.]])
    """
    act = getattr(dk, activation)
    y = np.full(weights.shape[1], x)
    product = np.ones(weights.shape[1])
    products = np.empty(weights.shape)
    for i, w in enumerate(weights):
        h = w * y
        product = product * activation_derivative(activation, h)
        products[i] = product
        y = act(h)
    return products


def layer_gradients(activation: str, weights: np.ndarray, x: float = X) -> np.ndarray:
    """Return dC/dw_i for the chain C = (3 - y_depth)^2, every init at once: (depth, inits).

    One reverse pass over array-valued weights: inits are independent, so the gradient of the
    sum of their losses is each init's own gradient.

    Example:
        >>> layer_gradients("relu", np.array([[1.0], [2.0]]))
        array([[-4.],
               [-2.]])
    """
    chain = chain_function(activation, len(weights))
    argnums = tuple(range(1, len(weights) + 1))
    grads = dk.grad(lambda x, *ws: dk.sum(chain(x, *ws)), argnums=argnums)(x, *weights)
    return np.array(grads)


def closed_form_dw1(activation: str, weights: np.ndarray, x: float = X) -> np.ndarray:
    """dC/dw1 = 2 (y - 3) * w_n ... w_2 * prod f'(h_i) * x, per init (shape (inits,)).

    Example:
        >>> closed_form_dw1("relu", np.array([[1.0], [2.0]]))
        array([-4.])
    """
    y = np.full(weights.shape[1], x)
    for w in weights:
        y = getattr(dk, activation)(w * y)
    product = chain_products(activation, weights, x)[-1]
    return 2 * (y - TARGET) * np.prod(weights[1:], axis=0) * product * x


def sympy_dw1(activation: str, weights: np.ndarray, x: float = X) -> np.ndarray:
    """dC/dw1 per init from sympy.diff of the chain traced into SymPy, at 30 digits.

    Example:
        >>> sympy_dw1("sigmoid", np.array([[0.0]]))
        array([-1.25])
    """
    depth = len(weights)
    symbols = sympy.symbols(f"x w1:{depth + 1}", real=True)
    derivative = sympy.diff(chain_function(activation, depth)(*symbols), symbols[1])
    out = []
    for column in weights.T:
        values = (x,) + tuple(float(w) for w in column)
        at = {s: sympy.Float(repr(v), 30) for s, v in zip(symbols, values)}
        out.append(float(derivative.subs(at).evalf(30)))
    return np.array(out)


def relative_error(actual, reference) -> float:
    """max |actual - reference| / |reference|; where the reference is 0, actual must be 0 too.

    Example:
        >>> relative_error([1.0, 0.0], [1.0, 0.0])
        0.0
    """
    actual, reference = np.asarray(actual, float), np.asarray(reference, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(actual - reference) / np.abs(reference)
    ratio = np.where(actual == reference, 0.0, ratio)
    return float(np.max(ratio, initial=0.0))


def _activation_study(activation, weights, count, params):
    products = chain_products(activation, weights[:count])
    depths = np.arange(1, count + 1)
    sup = derivative_sup(activation)
    grads = np.abs(layer_gradients(activation, weights[:ARTICLE_DEPTH]))
    nonzero = [np.median(g[g != 0]) if np.any(g != 0) else 0.0 for g in grads]
    closed = closed_form_dw1(activation, weights[:ARTICLE_DEPTH])
    reverse = layer_gradients(activation, weights[:ARTICLE_DEPTH])[0]
    sympy_errors = []
    for depth in params["sympy_depths"]:
        few = weights[:depth, : params["sympy_inits"]]
        reference = sympy_dw1(activation, few)
        sympy_errors.append({
            "depth": depth,
            "reverse_rel_error": relative_error(layer_gradients(activation, few)[0], reference),
            "closed_form_rel_error": relative_error(closed_form_dw1(activation, few), reference),
        })
    return {
        "sup_derivative": sup,
        "depths": depths.tolist(),
        "bound": (sup ** depths.astype(float)).tolist(),
        "product_median": np.median(products, axis=1).tolist(),
        "product_p05": np.quantile(products, 0.05, axis=1).tolist(),
        "product_p95": np.quantile(products, 0.95, axis=1).tolist(),
        "product_abs_max": np.max(np.abs(products), axis=1).tolist(),
        "abs_product_median": np.median(np.abs(products), axis=1).tolist(),
        "abs_product_p05": np.quantile(np.abs(products), 0.05, axis=1).tolist(),
        "abs_product_p95": np.quantile(np.abs(products), 0.95, axis=1).tolist(),
        "zero_fraction": np.mean(products == 0, axis=1).tolist(),
        "layer_grads_depth10": np.median(grads, axis=1).tolist(),
        "layer_grads_depth10_nonzero_median": [float(v) for v in nonzero],
        "layer_grads_depth10_nonzero_count": [int(np.sum(g != 0)) for g in grads],
        "closed_form_rel_error_depth10": relative_error(reverse, closed),
        "sympy_check": sympy_errors,
    }


def _zero_fractions(name, function, weight_count, inits, rng):
    weights = rng.normal(size=(weight_count, inits))
    argnums = tuple(range(1, weight_count + 1))
    grads = np.array(dk.grad(lambda x, *ws: dk.sum(function(x, *ws)), argnums=argnums)(X, *weights))
    return {
        "name": name,
        "weights": weight_count,
        "all_zero_fraction": float(np.mean(np.all(grads == 0, axis=0))),
        "zero_entry_fraction": float(np.mean(grads == 0)),
        "first_layer_zero_fraction": float(np.mean(grads[0] == 0)),
    }


def cure(inits: int, seed: int = SEED) -> dict:
    """Zero-gradient fractions: single-unit ReLU and leaky-ReLU chains vs 3-wide networks.

    Each model gets its own fresh N(0, 1) weights (x = 1); `all_zero_fraction` is the share of
    inits where every weight's gradient is exactly 0.

    Example:
        >>> cure(200)["models"][0]["name"]
        'chain_relu_3'
    """
    rng = np.random.default_rng([seed, 1])
    models = [
        ("chain_relu_3", chain_function("relu", CURE_DEPTH), CURE_DEPTH),
        ("chain_leaky_relu_3", chain_function("leaky_relu", CURE_DEPTH), CURE_DEPTH),
        ("relu_wide", relu_wide, WIDE_WEIGHTS),
        ("leaky_relu_wide", leaky_relu_wide, WIDE_WEIGHTS),
        ("chain_relu_10", chain_function("relu", ARTICLE_DEPTH), ARTICLE_DEPTH),
        ("chain_leaky_relu_10", chain_function("leaky_relu", ARTICLE_DEPTH), ARTICLE_DEPTH),
    ]
    return {
        "inits": inits,
        "models": [_zero_fractions(n, f, k, inits, rng) for n, f, k in models],
    }


def run(quick: bool = False, seeds: int | None = None, progress=None, inits: int | None = None,
        max_depth: int | None = None) -> dict:
    """Run the study; return its numbers (JSON-ready), timing only under "timing".

    `inits` and `max_depth` override the defaults (10,000 and 50; quick: 1,000 and 20).
    `seeds` is unused (the inits come from one generator); it is accepted so that every study
    takes the same parameters.

    Example:
        >>> run(quick=True, inits=20, max_depth=2)["activations"]["sigmoid"]["bound"]
        [0.25, 0.0625]
    """
    params = dict(QUICK if quick else FULL)
    params["inits"] = inits or params["inits"]
    params["max_depth"] = max(max_depth or params["max_depth"], ARTICLE_DEPTH)
    depths = min(max_depth or params["max_depth"], params["max_depth"])
    weights = np.random.default_rng(SEED).normal(size=(params["max_depth"], params["inits"]))
    started = time.perf_counter()
    activations = {}
    for activation in ACTIVATIONS:
        if progress:
            progress(f"vanishing: {activation}")
        activations[activation] = _activation_study(activation, weights, depths, params)
    if progress:
        progress("vanishing: the cure (leaky ReLU, width)")
    return {
        "parameters": {"quick": quick, "inits": params["inits"], "max_depth": depths},
        "inits": params["inits"],
        "seed": SEED,
        "x": X,
        "weights": "w_i ~ N(0, 1), numpy default_rng(seed), shared across activations",
        "activations": activations,
        "cure": cure(params["inits"]),
        "timing": {"seconds": time.perf_counter() - started},
    }
