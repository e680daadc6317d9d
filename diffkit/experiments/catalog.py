"""The article's cases by name (functions written with diffkit ops, default points, expected
values) and the step-by-step chain-rule tables generated from diffkit's tape."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

import diffkit as dk
from diffkit.errors import InputError
from diffkit.ops import PRIMITIVES

ACTIVATIONS = tuple(name for name, p in PRIMITIVES.items() if p.activation)
TARGET = 3.0  # the article's chain: C = (3 - y_depth)^2
ARTICLE_DEPTH = 10
CATALOG_LOGISTIC = (4, 8)
_CHAIN = re.compile(r"chain_([a-z_]+)_(\d+)")
_LOGISTIC = re.compile(r"logistic_map_(\d+)")
MAX_DEPTH = 10_000


@dataclass(frozen=True)
class Expected:
    """Values the article (or a closed form) gives: `value` of f and its `gradient`."""

    value: float | None = None
    gradient: tuple | None = None


@dataclass(frozen=True)
class Case:
    """One of the article's functions: `function(*point)` with positional float variables.

    `domain` is the (low, high) box that random points are drawn from.
    """

    name: str
    formula: str
    variables: tuple
    point: tuple
    function: object
    expected: Expected | None = None
    domain: tuple = (-2.0, 2.0)


def sigmoid_neuron(x, w, b):
    """The article's neuron 1/(1+exp(-(w*x+b))).

    Example:
        >>> sigmoid_neuron(1.0, 0.0, 0.0)
        0.5
    """
    return 1 / (1 + dk.exp(-(w * x + b)))


def sum_product(w1, w2, w3):
    """L = u*w3 with u = w1+w2.

    Example:
        >>> sum_product(1.0, 1.0, 1.0)
        2.0
    """
    u = w1 + w2
    return u * w3


def xor_graph(x, y):
    """h3 = h1+h2-1.5 with h1 = x+y-0.5 and h2 = -x-y+1.5 (always -0.5).

    Example:
        >>> xor_graph(1.0, 0.0)
        -0.5
    """
    h1 = x + y - 0.5
    h2 = -x - y + 1.5
    return h1 + h2 - 1.5


def xor_network(x1, x2, w1, w2, w3, w4, w5, w6, b1, b2, b3):
    """The 2-2-1 sigmoid network's output y for inputs x1, x2 and its 9 parameters.

    Example:
        >>> round(xor_network(1.0, 0.0, *XOR_HAND_WEIGHTS), 4)
        0.4366
    """
    h1 = dk.sigmoid(x1 * w1 + x2 * w2 + b1)
    h2 = dk.sigmoid(x1 * w3 + x2 * w4 + b2)
    return dk.sigmoid(w5 * h1 + w6 * h2 + b3)


# The article's hand-made XOR solution (h1 = x+y-0.5, h2 = -x-y+1.5, h3 = h1+h2-1.5) as weights.
XOR_HAND_WEIGHTS = (1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -0.5, 1.5, -1.5)
XOR_NETWORK_VARIABLES = ("x1", "x2", "w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3")


def chain_function(activation: str, depth: int):
    """Return C(x, w1, ..., w_depth) for y0 = x, y_i = f(w_i y_(i-1)), C = (3 - y_depth)^2.

    Example:
        >>> chain_function("relu", 2)(1.0, 2.0, 0.5)
        4.0
    """
    act = getattr(dk, activation)

    def chain(x, *weights):
        y = x
        for w in weights:
            y = act(w * y)
        return (TARGET - y) ** 2

    chain.__name__ = f"chain_{activation}_{depth}"
    return chain


def chain_case(activation: str, depth: int) -> Case:
    """Return the case `chain_<activation>_<depth>` at x = 1 and every weight 1.

    Example:
        >>> chain_case("sigmoid", 3).variables
        ('x', 'w1', 'w2', 'w3')
    """
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
    if not 1 <= depth <= MAX_DEPTH:
        raise InputError(f"chain depth {depth} is out of range; use 1..{MAX_DEPTH}")
    names = ("x",) + tuple(f"w{i}" for i in range(1, depth + 1))
    return Case(
        name=f"chain_{activation}_{depth}",
        formula=f"y_i = {activation}(w_i*y_(i-1)), y_0 = x, C = (3-y_{depth})**2",
        variables=names,
        point=(1.0,) * (depth + 1),
        function=chain_function(activation, depth),
    )


def leaky_relu_wide(x, *w):
    """The article's cure: x -> 3 leaky-ReLU units -> 3 leaky-ReLU units -> linear output y,
    no biases, C = (3 - y)^2; weights w1..w15 (3 + 3x3 + 3).

    Example:
        >>> leaky_relu_wide(1.0, *([1.0] * 15))
        36.0
    """
    return _wide(dk.leaky_relu, x, w)


def relu_wide(x, *w):
    """leaky_relu_wide with plain ReLU units: separates the effect of width from leakiness.

    Example:
        >>> relu_wide(1.0, *([-1.0] * 15))
        9.0
    """
    return _wide(dk.relu, x, w)


def _wide(act, x, w):
    first = [act(w[j] * x) for j in range(3)]
    second = [act(_dot(w[3 + 3 * k : 6 + 3 * k], first)) for k in range(3)]
    return (TARGET - _dot(w[12:15], second)) ** 2


def _dot(weights, inputs):
    total = weights[0] * inputs[0]
    for w, a in zip(weights[1:], inputs[1:]):
        total = total + w * a
    return total


WIDE_WEIGHTS = 15


def logistic_function(n: int):
    """Return l_n(x) for l_1 = x, l_(k+1) = 4 l_k (1 - l_k).

    Example:
        >>> logistic_function(3)(0.5)
        0.0
    """

    def logistic_map(x):
        for _ in range(n - 1):
            x = 4 * x * (1 - x)
        return x

    logistic_map.__name__ = f"logistic_map_{n}"
    return logistic_map


def baydin_derivative_l4(x):
    """d l_4/dx as Baydin et al. (JMLR 2018, Table 1) print it, expanded and simplified."""
    return 64 * (
        1 - 42 * x + 504 * x**2 - 2640 * x**3 + 7040 * x**4 - 9984 * x**5 + 7168 * x**6
        - 2048 * x**7
    )


def baydin_l4(x):
    """l_4 in Baydin et al.'s factored form: 64 x (1-x) (1-2x)^2 (1-8x+8x^2)^2."""
    return 64 * x * (1 - x) * (1 - 2 * x) ** 2 * (1 - 8 * x + 8 * x * x) ** 2


LOGISTIC_POINT = 0.3


def logistic_case(n: int) -> Case:
    """Return the case `logistic_map_<n>` at x = 0.3 (l_4 with Baydin et al.'s closed forms).

    Example:
        >>> logistic_case(4).expected.value == baydin_l4(0.3)
        True
    """
    if not 1 <= n <= MAX_DEPTH:
        raise InputError(f"logistic map length {n} is out of range; use 1..{MAX_DEPTH}")
    expected = None
    if n == 4:
        x = LOGISTIC_POINT
        expected = Expected(value=baydin_l4(x), gradient=(baydin_derivative_l4(x),))
    return Case(
        name=f"logistic_map_{n}",
        formula=f"l1 = x, l(k+1) = 4*l(k)*(1 - l(k)), f = l{n}",
        variables=("x",),
        point=(LOGISTIC_POINT,),
        function=logistic_function(n),
        expected=expected,
        domain=(0.0, 1.0),
    )


def _fixed_case(name: str) -> Case:
    if name == "sigmoid_neuron":
        return Case(
            name, "1/(1+exp(-(w*x+b)))", ("x", "w", "b"), (1.0, 0.0, 0.0), sigmoid_neuron,
            Expected(value=0.5, gradient=(0.0, 0.25, 0.25)),
        )
    if name == "sum_product":
        return Case(
            name, "u = w1+w2, L = u*w3", ("w1", "w2", "w3"), (1.0, 1.0, 1.0), sum_product,
            Expected(value=2.0, gradient=(1.0, 1.0, 2.0)),
        )
    if name == "xor_graph":
        # h3 = (x+y-0.5) + (-x-y+1.5) - 1.5 = -0.5: the two paths from x cancel, +1 and -1.
        return Case(
            name, "h1 = x+y-0.5, h2 = -x-y+1.5, h3 = h1+h2-1.5", ("x", "y"), (1.0, 0.0),
            xor_graph, Expected(value=-0.5, gradient=(0.0, 0.0)),
        )
    if name == "xor_network":
        return Case(
            name,
            "h1 = s(x1*w1+x2*w2+b1), h2 = s(x1*w3+x2*w4+b2), y = s(w5*h1+w6*h2+b3)",
            XOR_NETWORK_VARIABLES, (1.0, 0.0) + XOR_HAND_WEIGHTS, xor_network,
        )
    if name == "leaky_relu_wide":
        return Case(
            name,
            "x -> 3 leaky_relu -> 3 leaky_relu -> linear y, C = (3 - y)**2",
            ("x",) + tuple(f"w{i}" for i in range(1, WIDE_WEIGHTS + 1)),
            (1.0,) + drawn_weights(WIDE_WEIGHTS, seed=0),
            leaky_relu_wide,
        )
    raise InputError(f"unknown case {name!r}; run `diffkit list` to see the catalog")


def drawn_weights(count: int, seed: int) -> tuple:
    """Weights drawn once from N(0, 1) with numpy's default_rng(seed), rounded to 2 decimals.

    Example:
        >>> drawn_weights(2, seed=0)
        (0.13, -0.13)
    """
    return tuple(round(float(w), 2) for w in np.random.default_rng(seed).normal(size=count))


FIXED = ("sigmoid_neuron", "sum_product", "xor_graph", "xor_network", "leaky_relu_wide")


def get(name: str) -> Case:
    """Return the case called `name`; chains and logistic maps of any size are generated.

    Example:
        >>> get("chain_tanh_25").point[:2]
        (1.0, 1.0)
    """
    match = _CHAIN.fullmatch(name)
    if match:
        return chain_case(match.group(1), int(match.group(2)))
    match = _LOGISTIC.fullmatch(name)
    if match:
        return logistic_case(int(match.group(1)))
    return _fixed_case(name)


def catalog(chain_depth: int = ARTICLE_DEPTH) -> list:
    """Return every case of the catalog in a fixed order, chains at `chain_depth` (the
    article's 10 by default).

    Example:
        >>> [case.name for case in catalog()][:2]
        ['sigmoid_neuron', 'sum_product']
    """
    cases = [_fixed_case(name) for name in FIXED]
    cases += [chain_case(act, chain_depth) for act in ACTIVATIONS]
    cases += [logistic_case(n) for n in CATALOG_LOGISTIC]
    return cases


# ---- the article's step-by-step table, read off diffkit's tape ----

_TEMPLATES = {
    "add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}", "divide": "{0} / {1}",
    "power": "{0} ** {1}", "negative": "-{0}",
}


@dataclass(frozen=True)
class Step:
    """One tape entry: `name` = `operation` has `value`; `local` maps each differentiated
    operand's name to the local derivative d name / d operand."""

    name: str
    operation: str
    value: float
    local: tuple


@dataclass(frozen=True)
class Path:
    """One path from an input to the output: the node names and the local derivatives
    multiplied along it ("same path multiply")."""

    nodes: tuple
    factors: tuple
    product: float


def chain_rule_table(case: Case, max_paths: int = 64):
    """Return (steps, paths, gradient) for `case` at its point, read off diffkit's tape.

    `paths` maps each input name to its Path list; `gradient` sums them ("different paths
    add"). Only for small graphs: the number of paths can grow exponentially (see swell).

    Example:
        >>> steps, paths, gradient = chain_rule_table(get("sigmoid_neuron"))
        >>> [s.value for s in steps], gradient["w"]
        ([0.0, 0.0, -0.0, 1.0, 2.0, 0.5], 0.25)
    """
    count = len(case.variables)
    traced = dk.trace(case.function, *case.point)
    tape = traced.entries
    names = list(case.variables) + [f"h{i - count + 1}" for i in range(count, len(tape))]
    steps = []
    children = [[] for _ in tape]
    for i in range(count, len(tape)):
        prim, vals, params, ans, parents = tape[i]
        operands = [_show(v) for v in vals]
        local = []
        for position, j in parents:
            operands[position] = names[j]
            rule = prim.vjp[position]
            derivative = rule(1.0, ans, *vals, **params) if params else rule(1.0, ans, *vals)
            local.append((names[j], float(derivative)))
            children[j].append((i, float(derivative)))
        template = _TEMPLATES.get(prim.name, prim.name + "({0})")
        steps.append(Step(names[i], template.format(*operands), float(ans), tuple(local)))
    paths = {names[k]: _paths_from(k, traced.output, children, names, max_paths)
             for k in range(count)}
    gradient = {name: float(sum(p.product for p in ps)) for name, ps in paths.items()}
    return steps, paths, gradient


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _paths_from(start, end, children, names, max_paths):
    """Every path start -> end with its factors, by an explicit stack (small graphs only)."""
    found = []
    stack = [((start,), ())]
    while stack:
        nodes, factors = stack.pop()
        node = nodes[-1]
        if node == end:
            product = 1.0
            for f in factors:
                product *= f
            found.append(Path(tuple(names[n] for n in nodes), factors, product))
            if len(found) > max_paths:
                raise InputError(f"more than {max_paths} paths; count them instead (swell study)")
            continue
        for child, derivative in reversed(children[node]):
            stack.append((nodes + (child,), factors + (derivative,)))
    return found


def run_list(args) -> int:
    """Print the catalog (name, formula, variables, default point); return exit status 0.

    Example:
        >>> run_list(None)  # doctest: +ELLIPSIS
        name ...
        0
    """
    from tabulate import tabulate

    rows = [
        (case.name, case.formula, _compact(case.variables), _show_point(case.point))
        for case in catalog()
    ]
    headers = ("name", "formula", "variables", "default point")
    print(tabulate(rows, headers=headers, maxcolwidths=[None, 50, 16, 34]))
    print(
        "\nAlso: chain_<activation>_<depth> for any depth 1..10000 (activations: "
        f"{', '.join(ACTIVATIONS)}) and logistic_map_<n> for any n."
    )
    return 0


def _compact(variables) -> str:
    """'x, w1, w2, ..., w10' as 'x, w1..w10' when the names end in a run w1..wn."""
    names = list(variables)
    count = 0
    while count < len(names) and names[len(names) - 1 - count] == f"w{len(names) - count - 1}":
        count += 1
    run = names[len(names) - count :]
    if count > 3 and run == [f"w{i}" for i in range(1, count + 1)]:
        return ", ".join(names[: len(names) - count] + [f"w1..w{count}"])
    return ", ".join(names)


def _show_point(point) -> str:
    return "(" + ", ".join(f"{p:g}" for p in point) + ")"
