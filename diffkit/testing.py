"""pytest helpers for users' CI: assert that every method of differentiation agrees, and that
no hand-written rule is wrong. An AssertionError's message is the comparison table."""

from __future__ import annotations

from diffkit.check import check_grad
from diffkit.compare import compare
from diffkit.diagnose import diagnose
from diffkit.report.check import assert_report_matches

__all__ = ["assert_engine_conforms", "assert_grad_correct", "assert_grads_agree",
           "assert_report_matches", "assert_rules_correct"]


def assert_grads_agree(f, *args, order: int = 1, names=None, rtol=None, atol=None):
    """Assert that reverse, forward, symbolic, central and complex-step derivatives agree.

    Returns the Comparison when they do; raises AssertionError with its table when not.

    Example:
        >>> import diffkit as dk
        >>> assert_grads_agree(lambda x, y: dk.tanh(x) * y, 0.3, 2.0).agree
        True
    """
    result = compare(f, *args, names=names, order=order, rtol=rtol, atol=atol)
    if not result.agree:
        raise AssertionError("derivatives disagree\n" + result.table())
    return result


def assert_rules_correct(f, *args, seed: int = 0):
    """Assert that every primitive f applies has VJP and JVP rules matching finite differences.

    Example:
        >>> import diffkit as dk
        >>> assert_rules_correct(lambda x: dk.sigmoid(x) ** 2, 0.7).ok
        True
    """
    result = diagnose(f, *args, seed=seed)
    if not result.ok:
        raise AssertionError(str(result))
    return result


def assert_grad_correct(f, grad_f, *args, names=None, rtol=None, atol=None):
    """Assert that grad_f, a hand-written gradient of f, is right at args (see check_grad).

    Returns the Check when it is; raises AssertionError with its table when not.

    Example:
        >>> import numpy as np
        >>> assert_grad_correct(lambda x: np.sum(x ** 2), lambda x: 2 * x,
        ...                     np.array([1.0, -2.0])).agree
        True
    """
    result = check_grad(f, grad_f, *args, names=names, rtol=rtol, atol=atol)
    if not result.agree:
        raise AssertionError(result.table())
    return result


def assert_engine_conforms(adapter, ops=None, quick: bool = False):
    """Assert that an AD engine conforms (see diffkit.conformance.run): every op it supports,
    compositions and properties. adapter is a module, a .py file, a module name or a shipped
    adapter's short name.

    Returns the Conformance when it does; raises AssertionError with its table when not.

    Example:
        >>> assert_engine_conforms("diffkit", ops=["exp", "multiply"], quick=True).agree
        True
    """
    from diffkit.conformance import run

    result = run(adapter, ops=ops, quick=quick)
    if not result.agree:
        raise AssertionError(result.table())
    return result
