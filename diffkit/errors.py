"""diffkit's own exceptions: each message is one line that tells the user what to do."""


class DiffkitError(Exception):
    """Base class of every error diffkit raises on purpose."""


class ExpressionError(DiffkitError, ValueError):
    """User text that is not an expression of diffkit's grammar (see DESIGN.md)."""


class InputError(DiffkitError, ValueError):
    """Arguments that cannot be differentiated: wrong dtype, wrong names, non-finite values."""


class RuleError(DiffkitError):
    """A primitive without the rule a transform needs (no VJP, no JVP, no SymPy counterpart)."""


class NotAnalyticError(DiffkitError, TypeError):
    """A primitive that is not analytic (abs, relu, ...) was given complex input (complex step)."""
