"""The article's automatic-differentiation engine, as its author wrote it, and the adapter that
lets diffkit check it.

Run: diffkit conformance examples/article_engine.py

It reports what no test of the forward pass can see: leaky_relu's derivative is 1 for x < 0
(it should be 0.01), because for x <= 0 it scales its input's value in place and returns the
input itself; that mutation; get_gradients recursing until Python's RecursionError on a chain
of 1000 operations; and its cost doubling with every step of the logistic map (it walks every
path from the output, not every node). Everything else in it is right.
"""

import math
from collections import defaultdict

# ---- the engine, as the article writes it ----


class Variable:
    def __init__(self, value, local_gradients=()):
        self.value = value
        self.local_gradients = local_gradients

    def __add__(self, other):
        return add(self, other)

    def __mul__(self, other):
        return mul(self, other)

    def __sub__(self, other):
        return add(self, neg(other))

    def __truediv__(self, other):
        return mul(self, inv(other))

    def __neg__(self):
        return neg(self)


ONE = Variable(1.0)


def add(a, b):
    value = a.value + b.value
    local_gradients = ((a, 1), (b, 1))
    return Variable(value, local_gradients)


def mul(a, b):
    value = a.value * b.value
    local_gradients = ((a, b.value), (b, a.value))
    return Variable(value, local_gradients)


def neg(a):
    value = -1 * a.value
    local_gradients = ((a, -1),)
    return Variable(value, local_gradients)


def inv(a):
    value = 1.0 / a.value
    local_gradients = ((a, -1 / a.value**2),)
    return Variable(value, local_gradients)


def exp(a):
    value = math.exp(a.value)
    local_gradients = ((a, value),)
    return Variable(value, local_gradients)


def sigmoid(z):
    return ONE / (ONE + exp(-z))


def ReLu(x):
    if x.value > 0:
        return Variable(x.value, ((x, 1),))
    return Variable(0.0, ((x, 0),))


def leaky_ReLu(x):
    if x.value > 0:
        return Variable(x.value, ((x, 1),))
    x.value = 0.01 * x.value
    return x


def get_gradients(variable):
    """Compute the first derivatives of `variable` with respect to child variables."""
    gradients = defaultdict(lambda: 0)

    def compute_gradients(variable, path_value):
        for child_variable, local_gradient in variable.local_gradients:
            # "Multiply the edges of a path":
            value_of_path_to_child = path_value * local_gradient
            # "Add together the different paths":
            gradients[child_variable] += value_of_path_to_child
            # recurse through graph:
            compute_gradients(child_variable, value_of_path_to_child)

    compute_gradients(variable, path_value=1)
    return gradients


# ---- the adapter: how `diffkit conformance` drives the engine ----

NAME = "the article's engine"
PARAMS = {"leaky_relu": {"alpha": 0.01}}
OPS = {
    "add": add,
    "subtract": lambda a, b: a - b,
    "multiply": mul,
    "divide": lambda a, b: a / b,
    "negative": neg,
    "exp": exp,
    "sigmoid": sigmoid,
    "relu": ReLu,
    "leaky_relu": leaky_ReLu,
}


def variable(x):
    return Variable(float(x))


def value(v):
    return float(v.value)


def gradients(output, inputs):
    # get_gradients lists the variables below its argument; an input that is the output
    # itself (what leaky_ReLu returns for x <= 0) has derivative 1
    found = get_gradients(output)
    return [1.0 if x is output else found[x] for x in inputs]
