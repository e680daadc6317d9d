"""diffkit's own exceptions: each message is one line that tells the user what to do."""


def first_line(error, default: str = "") -> str:
    """Return the first line of str(error), or `default` when it is empty: what a one-line
    message quotes of an exception.

    Example:
        >>> first_line(ValueError("bad\\nmore")), first_line(KeyError(), "missing")
        ('bad', 'missing')
    """
    text = str(error)
    return text.splitlines()[0] if text else default


class DiffkitError(Exception):
    """Base class of every error diffkit raises on purpose."""


class ExpressionError(DiffkitError, ValueError):
    """User text that is not an expression of diffkit's grammar (`diffkit verify --help`)."""


class InputError(DiffkitError, ValueError):
    """Arguments that cannot be differentiated: wrong dtype, wrong names, non-finite values."""


class RuleError(DiffkitError):
    """A primitive without the rule a transform needs (no VJP, no JVP, no SymPy counterpart)."""


class NotAnalyticError(DiffkitError, TypeError):
    """A primitive registered with analytic=False (no complex path) was given complex input:
    the complex step does not apply to it. diffkit's own piecewise ops (abs, relu, ...) take
    complex input by the sign of its real part, so the complex step applies away from kinks."""


class SwitchPointError(NotAnalyticError):
    """A piecewise primitive (abs, relu, maximum, ...) was given a complex step exactly at its
    switch: no branch is the function there, so the complex step does not apply at that point
    (it would silently return one branch's derivative)."""


class TracedValueError(DiffkitError, TypeError):
    """A traced value handed to something that needs a plain number or cannot differentiate."""
