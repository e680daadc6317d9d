"""diffkit: differentiate one expression four ways and see where the methods disagree."""

from diffkit.check import Check, check_grad, check_hessian, check_jacobian
from diffkit.compare import Comparison, compare
from diffkit.compile import Compiled, compile
from diffkit.core import Primitive
from diffkit.diagnose import Diagnosis, diagnose
from diffkit.errors import (
    DiffkitError,
    ExpressionError,
    InputError,
    NotAnalyticError,
    RuleError,
    SwitchPointError,
    TracedValueError,
)
from diffkit.expression import Expression, parse
from diffkit.extend import defjvp, defvjp, primitive, replaced_rule
from diffkit.forward import jacfwd, jvp
from diffkit.mixed import hessian, hvp
from diffkit.ops import (
    abs,
    cos,
    cosh,
    elu,
    exp,
    leaky_relu,
    log,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    relu,
    reshape,
    sigmoid,
    silu,
    sin,
    sinh,
    softplus,
    sqrt,
    sum,
    tan,
    tanh,
    transpose,
    where,
)
from diffkit.reverse import TapeEntry, Trace, grad, jacobian, trace, value_and_grad, vjp

__version__ = "0.1.0"

__all__ = [
    "Comparison", "Compiled", "Diagnosis", "DiffkitError", "Expression", "ExpressionError",
    "InputError", "NotAnalyticError", "Primitive", "RuleError", "SwitchPointError",
    "TracedValueError", "compare",
    "compile", "defjvp", "defvjp", "diagnose", "parse", "primitive", "replaced_rule",
    "abs", "cos", "cosh", "elu", "exp", "grad", "hessian", "hvp", "jacfwd", "jacobian", "jvp",
    "leaky_relu", "log", "logsumexp", "matmul", "max", "maximum", "mean", "relu", "reshape",
    "sigmoid", "silu", "sin", "sinh", "softplus", "sqrt", "sum", "tan", "tanh", "transpose",
    "value_and_grad", "vjp", "where", "Trace", "TapeEntry", "trace",
    "Check", "check_grad", "check_hessian", "check_jacobian",
]
