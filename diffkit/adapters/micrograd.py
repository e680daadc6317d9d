"""micrograd (Karpathy's scalar Values) under `diffkit conformance`: its own operations only
(+, -, *, /, unary -, relu; ** takes a number, not a Value, so power is not listed)."""

from __future__ import annotations

from micrograd.engine import Value

NAME = "micrograd"
OPS = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b, "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b, "negative": lambda a: -a, "relu": lambda a: a.relu(),
}


def variable(x):
    """A micrograd Value holding x."""
    return Value(float(x))


def value(v):
    """The Value's data as a float."""
    return float(v.data)


def gradients(output, inputs):
    """Every grad of the graph zeroed (iteratively, as a training loop's zero_grad does), then
    micrograd's own backward(); the inputs' grads."""
    stack, seen = [output], set()
    while stack:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            v.grad = 0
            stack.extend(v._prev)
    output.backward()
    return [float(x.grad) for x in inputs]
