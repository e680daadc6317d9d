"""User-defined primitives: `primitive` wraps a NumPy function, `defvjp` and `defjvp` attach
hand-written rules. diffkit checks them exactly as it checks its own (compare, diagnose)."""

from __future__ import annotations

import inspect
from contextlib import contextmanager

from diffkit.core import Primitive, set_rules
from diffkit.errors import RuleError


def _missing(name: str, k: int, mode: str):
    def rule(*args, **params):
        raise RuleError(
            f"{name} has no {mode.upper()} rule for input {k}: define one with diffkit.def{mode}"
        )

    return rule


def _count_inputs(impl) -> int:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds for p in inspect.signature(impl).parameters.values())


def primitive(impl=None, *, name=None, sympy_impl=None, analytic=True, elementwise=True):
    """Make a NumPy function a diffkit primitive; give it rules with defvjp and defjvp.

    Until a rule is defined, differentiating through the primitive raises RuleError.

    Example:
        >>> import numpy as np
        >>> cube = primitive(lambda x: x**3, name="cube")
        >>> defvjp(cube, lambda g, ans, x: 3 * g * x**2)
        >>> import diffkit as dk
        >>> dk.grad(cube)(2.0)
        12.0
    """

    def make(impl):
        n = _count_inputs(impl)
        label = name or impl.__name__
        return Primitive(
            label, impl, sympy_impl,
            vjp=[_missing(label, k, "vjp") for k in range(n)],
            jvp=[_missing(label, k, "jvp") for k in range(n)],
            analytic=analytic, elementwise=elementwise,
        )

    return make if impl is None else make(impl)


def defvjp(prim: Primitive, *rules) -> None:
    """Set prim's VJP rules, one `rule(g, ans, *args)` per input in order; inputs past the
    last rule (or given None) are not differentiable."""
    set_rules(prim, "vjp", list(rules) + [None] * (len(prim.vjp) - len(rules)))


def defjvp(prim: Primitive, *rules) -> None:
    """Set prim's JVP rules, one `rule(t, ans, *args)` per input in order; inputs past the
    last rule (or given None) are not differentiable."""
    set_rules(prim, "jvp", list(rules) + [None] * (len(prim.jvp) - len(rules)))


@contextmanager
def replaced_rule(prim: Primitive, mode: str, k: int, rule):
    """Within the block, prim's `mode` ("vjp" or "jvp") rule for input k is `rule`; the old
    rules come back afterwards, whatever happens (a test of a checker, a deliberate bug).

    Example:
        >>> import diffkit as dk
        >>> with replaced_rule(dk.sin, "vjp", 0, lambda g, ans, x: 2 * g):
        ...     dk.grad(dk.sin)(0.0)
        2.0
        >>> dk.grad(dk.sin)(0.0)
        1.0
    """
    rules = list(getattr(prim, mode))
    rules[k] = rule
    old = set_rules(prim, mode, rules)
    try:
        yield prim
    finally:
        set_rules(prim, mode, old)
