"""A recorded graph for functional engines (diffkit, JAX), whose gradients are transforms of a
function rather than a method of a value: variables and operations record nodes (with their
values, computed eagerly), and `gradients` replays the graph as a function of the inputs."""

from __future__ import annotations

from collections.abc import Callable


class Node:
    """A value of the recorded graph: `value` (the engine's), and how it was computed (`fn`
    applied to the nodes `args`; `fn` None for a variable)."""

    __slots__ = ("value", "fn", "args")

    def __init__(self, value, fn=None, args=()):
        self.value = value
        self.fn = fn
        self.args = args


def variable(x: float) -> Node:
    """Return a leaf node holding x."""
    return Node(x)


def recorded(fn: Callable) -> Callable:
    """Return fn on nodes: computes fn on their values now and records the application.

    Example:
        >>> import math
        >>> recorded(math.exp)(variable(0.0)).value
        1.0
    """

    def op(*nodes):
        return Node(fn(*(n.value for n in nodes)), fn, nodes)

    op.__name__ = getattr(fn, "__name__", "op")
    return op


def topological(output: Node) -> list:
    """The nodes output depends on, each after its arguments (an explicit stack: any depth)."""
    order, seen = [], set()
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
        stack.extend((a, False) for a in reversed(node.args))
    return order


def replay(output: Node, inputs: list) -> Callable:
    """Return the function of the inputs' values that recomputes output along the graph; other
    leaves are constants.

    Example:
        >>> import operator
        >>> x, y = variable(2.0), variable(3.0)
        >>> replay(recorded(operator.mul)(x, y), [x, y])(5.0, 3.0)
        15.0
    """
    order = topological(output)
    slots = {id(x): k for k, x in enumerate(inputs)}

    def function(*values):
        env = {}
        for node in order:
            k = slots.get(id(node))
            if k is not None:
                env[id(node)] = values[k]
            elif node.fn is None:
                env[id(node)] = node.value
            else:
                env[id(node)] = node.fn(*(env[id(a)] for a in node.args))
        return env[id(output)]

    return function
