"""The article's leaky ReLU bug, caught and pinpointed by diffkit.

The article's framework gave leaky ReLU the derivative 1 for x < 0 instead of alpha: a bug no
test of the forward pass can see. Here the same mistake is written as a user-defined primitive;
`compare` shows reverse and forward mode disagreeing with the symbolic reference and central
differences, and `diagnose` names the primitive, its inputs and the line that applied it.

Run: python examples/leaky_relu_bug.py
"""

import numpy as np
import sympy

import diffkit as dk

ALPHA = 0.01

leaky_relu = dk.primitive(
    lambda x: np.where(np.asarray(x) > 0, x, ALPHA * x),
    name="article_leaky_relu",
    sympy_impl=lambda x: sympy.Piecewise((x, x > 0), (ALPHA * x, True)),
    analytic=False,
)
# The bug: for x < 0 the derivative should be ALPHA, not 1.
dk.defvjp(leaky_relu, lambda g, ans, x: g * dk.where(x > 0, 1.0, 1.0))
dk.defjvp(leaky_relu, lambda t, ans, x: t * dk.where(x > 0, 1.0, 1.0))


def network(x, w1, w2):
    hidden = leaky_relu(w1 * x)
    return dk.sigmoid(w2 * hidden)


POINT = (1.0, -0.5, 2.0)  # w1 * x < 0: the leaky side

if __name__ == "__main__":
    print(dk.compare(network, *POINT, names=("x", "w1", "w2")).table())
    print()
    print(dk.diagnose(network, *POINT))
