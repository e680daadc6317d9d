"""The article's own reverse-mode algorithm, kept as a baseline: scalar values, each node storing
its local derivatives, the gradient pushed down every path from the output, recursively.

It is correct, but its cost is the number of paths, not of nodes: a value used twice doubles the
work below it (exponential on shared subgraphs, e.g. the logistic map), and the recursion is as
deep as the graph, so Python's recursion limit stops it on long chains (RecursionError).
"""

from __future__ import annotations

import math
from collections import defaultdict


class Variable:
    """A scalar value and the local derivatives of it with respect to its direct inputs.

    `local_gradients` is a tuple of (input Variable, d self / d input) pairs.
    """

    __slots__ = ("value", "local_gradients")

    def __init__(self, value, local_gradients=()):
        self.value = value
        self.local_gradients = local_gradients

    def __add__(self, other):
        other = _lift(other)
        return Variable(self.value + other.value, ((self, 1.0), (other, 1.0)))

    def __radd__(self, other):
        return _lift(other) + self

    def __sub__(self, other):
        other = _lift(other)
        return Variable(self.value - other.value, ((self, 1.0), (other, -1.0)))

    def __rsub__(self, other):
        return _lift(other) - self

    def __mul__(self, other):
        other = _lift(other)
        return Variable(self.value * other.value, ((self, other.value), (other, self.value)))

    def __rmul__(self, other):
        return _lift(other) * self

    def __truediv__(self, other):
        other = _lift(other)
        value = self.value / other.value
        return Variable(value, ((self, 1.0 / other.value), (other, -value / other.value)))

    def __rtruediv__(self, other):
        return _lift(other) / self

    def __neg__(self):
        return Variable(-self.value, ((self, -1.0),))

    def __repr__(self):
        return f"Variable({self.value!r})"


def _lift(x):
    return x if isinstance(x, Variable) else Variable(float(x))


def exp(a):
    """e**a, with local derivative e**a."""
    value = math.exp(a.value)
    return Variable(value, ((a, value),))


def log(a):
    """Natural log of a, with local derivative 1/a."""
    return Variable(math.log(a.value), ((a, 1.0 / a.value),))


def tanh(a):
    """tanh(a), with local derivative 1 - tanh(a)**2."""
    value = math.tanh(a.value)
    return Variable(value, ((a, 1.0 - value * value),))


def gradients(output):
    """Return {Variable: d output / d Variable} by pushing the derivative down every path.

    Each call of `push` walks one path further; a node reached by k paths is visited k times.
    """
    grads = defaultdict(float)

    def push(node, path_value):
        for child, local in node.local_gradients:
            value = path_value * local
            grads[child] += value
            push(child, value)

    push(output, 1.0)
    return grads


def count_paths(output):
    """Return how many times `gradients(output)` visits a node: the number of paths it walks.

    Counted by dynamic programming over the graph (iteratively), so it works where
    `gradients` itself would take forever.
    """
    order = []
    seen = set()
    stack = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child, _ in node.local_gradients)
    paths = {id(output): 1}
    total = 0
    for node in reversed(order):  # parents before children
        reaching = paths.get(id(node), 0)
        for child, _ in node.local_gradients:
            paths[id(child)] = paths.get(id(child), 0) + reaching
            total += reaching
    return total
