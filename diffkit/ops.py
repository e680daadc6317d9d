"""THE table of primitives: for each operation its NumPy implementation, SymPy counterpart,
VJP and JVP rules, side by side. These Primitive objects are the functions users call.

Kink convention (one value at x = 0, the same in reverse mode, forward mode and SymPy):
relu'(0) = 0, leaky_relu'(0) = alpha, elu'(0) = alpha (the x <= 0 branch), abs'(0) = sign(0) = 0,
and maximum(x, y) gives each input half the cotangent where x == y (Heaviside(0) = 1/2).

Complex input (the complex step): smooth primitives are analytic and their NumPy code stays
finite where float64 does (softplus(710 + ih), sigmoid(-800 + ih)). Piecewise primitives (abs,
sign, heaviside, relu, leaky_relu, elu, maximum, max) branch on the real part, as Martins, Sturdza
and Alonso (2003) do, so the complex step applies to them away from kinks. A step taken exactly
at a switch (a real part on it, a nonzero imaginary part) raises SwitchPointError: there no
branch is the function, and one branch's derivative would pass for the derivative
(relu(x) - relu(-x) at 0 is x, slope 1; every branch gives 0). Every primitive here keeps
`analytic=True`, which reads "the complex step applies away from switches"; a user primitive
registered with analytic=False, having no complex path, raises NotAnalyticError on complex input.
"""

import builtins
import math
import operator
import warnings

import numpy as np
import sympy

from diffkit.core import Primitive, is_symbolic, primal, shape_of
from diffkit.errors import SwitchPointError

_INF = math.inf
_NAN = math.nan


def _float_fallback(np_fn, *args):
    """Evaluate a scalar operation in NumPy when Python floats would raise (1/0, 10.0**400)."""
    with np.errstate(all="ignore"):
        return float(np_fn(*(float(a) for a in args)))


# ---- scalar fast paths: Python floats in, Python floats out, inf/nan instead of exceptions ----

def _divide_scalar(x, y):
    try:
        return x / y
    except ZeroDivisionError:
        return _float_fallback(np.divide, x, y)


def _power_scalar(x, y):
    try:
        out = x**y
    except (ZeroDivisionError, OverflowError):
        return _float_fallback(np.power, x, y)
    return _NAN if type(out) is complex else out


def _exp_scalar(x):
    try:
        return math.exp(x)
    except OverflowError:
        return _INF


def _log_scalar(x):
    if x > 0:
        return math.log(x)
    return -_INF if x == 0 else _NAN


def _guarded(fn, on_overflow):
    def scalar(x):
        try:
            return fn(x)
        except OverflowError:
            return on_overflow(x)
        except ValueError:  # math.sin(inf) and friends
            return _NAN

    return scalar


def _sigmoid_scalar(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softplus_scalar(x):
    return builtins.max(x, 0.0) + math.log1p(math.exp(-builtins.abs(x)))


def _heaviside_scalar(x, at_zero):
    return 1.0 if x > 0 else (at_zero if x == 0 else 0.0)


# ---- NumPy implementations that must stay finite at +-1000, for real and complex input ----

def _sigmoid_np(x):
    if np.iscomplexobj(x):
        # exp of the side whose real part is <= 0: 1 / (1 + exp(800 + ih)) would be nan
        x = np.asarray(x)
        right = x.real >= 0
        e = np.exp(np.where(right, -x, x))
        return (np.where(right, 1.0, e) / (1.0 + e))[()]
    e = np.exp(-np.abs(x))  # <= 1: no overflow on either side
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _log1p_complex(w):
    """log(1 + w) for complex w; NumPy's loses the real part of a tiny w (log1p(1e-300+0j) = 0)."""
    a, b = w.real, w.imag
    return 0.5 * np.log1p(a * (2.0 + a) + b * b) + 1j * np.arctan2(b, 1.0 + a)


def _softplus_np(x):
    if np.iscomplexobj(x):
        # z + log1p(exp(-z)) where Re z > 0: log1p(exp(710 + ih)) overflows to a wrong slope
        x = np.asarray(x)
        right = x.real > 0
        return (np.where(right, x, 0.0) + _log1p_complex(np.exp(np.where(right, -x, x))))[()]
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _elu_np(x, alpha=1.0):
    _off_switch("elu", x)
    right = np.real(x) > 0  # complex input: by the real part (the complex step)
    return np.where(right, x, alpha * np.expm1(np.where(right, 0.0, x)))


# Piecewise primitives on complex input branch on the real part (module docstring): then
# Im f(x + ih) / h is the derivative of the branch x is on; a step exactly at a switch is refused.

def _off_switch(name, x):
    """Raise SwitchPointError where complex x steps exactly at the switch 0 of `name`."""
    if np.iscomplexobj(x) and np.any((np.real(x) == 0) & (np.imag(x) != 0)):
        raise SwitchPointError(f"{name} stepped exactly at its switch 0: the complex step "
                               f"does not apply there")


def _abs_np(x):
    if not np.iscomplexobj(x):
        return np.abs(x)
    _off_switch("abs", x)
    x = np.asarray(x)
    return (np.sign(x.real) * x)[()]


def _sign_np(x):
    _off_switch("sign", x)
    return np.sign(np.real(x))


def _heaviside_np(x, at_zero):
    _off_switch("heaviside", x)
    return np.heaviside(np.real(x), np.real(at_zero))


def _maximum_np(x, y):
    if not (np.iscomplexobj(x) or np.iscomplexobj(y)):
        return np.maximum(x, y)
    x, y = np.asarray(x), np.asarray(y)
    if np.any((x.real == y.real) & (x.imag != y.imag)):
        raise SwitchPointError("maximum at a tie of its arguments: the complex step does not "
                               "apply there")
    # a tie left here has equal steps, so (x + y) / 2 is either; a nan stays nan
    return np.where(x.real > y.real, x, np.where(x.real < y.real, y, (x + y) / 2))[()]


def _max_np(x, axis=None, keepdims=False):
    if not np.iscomplexobj(x):
        return np.max(x, axis=axis, keepdims=keepdims)
    x = np.asarray(x)
    top = np.max(x.real, axis=axis, keepdims=True)
    hit = x.real == top
    imag = np.where(hit, x.imag, np.nan)
    with warnings.catch_warnings():  # a slice with no hit (a nan entry): all-nan is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nanmax(imag, axis=axis) - np.nanmin(imag, axis=axis)
    if np.any(spread > 0):
        raise SwitchPointError("max at a tie of its entries: the complex step does not apply "
                               "there")
    with np.errstate(invalid="ignore"):  # a nan entry: no hit, 0 / 0 is the nan max gives
        return np.divide(np.sum(np.where(hit, x, 0.0), axis=axis, keepdims=keepdims),
                         np.sum(hit, axis=axis, keepdims=keepdims))[()]


def _logsumexp_np(x, axis=None, keepdims=False):
    x = np.asarray(x)
    m = np.maximum.reduce(x.real if x.dtype.kind == "c" else x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True))
    if not keepdims:
        out = np.squeeze(out, axis=axis)
    return out[()] if out.ndim == 0 else out


def _untake_np(g, index, shape):
    dtype = object if is_symbolic(g) else np.result_type(g, float)
    out = np.zeros(shape, dtype=dtype)
    np.add.at(out, index, g)
    return out


def _identity_scalar(x, axis=None, keepdims=False):
    return x


# ---- SymPy counterparts of what SymPy spells differently ----

def _sympy_where(cond, x, y):
    if cond in (True, False):
        return x if cond else y
    return sympy.Piecewise((x, cond), (y, True))


def _sympy_reduce(fn):
    def reduce(x, axis=None, keepdims=False):
        return fn(np.asarray(x, dtype=object), axis=axis, keepdims=keepdims)

    return reduce


_sympy_max_pair = np.frompyfunc(sympy.Max, 2, 1)


def _sympy_max(x, axis=None, keepdims=False):
    """Max over the axes of an object array: NumPy reduces a Python ufunc over one axis at a
    time only, and Max is associative, so one axis after another gives the same."""
    x = np.asarray(x, dtype=object)
    axes = range(x.ndim) if axis is None else np.atleast_1d(axis) % builtins.max(x.ndim, 1)
    axes = tuple(int(a) for a in axes)
    for a in axes:
        x = _sympy_max_pair.reduce(x, axis=a, keepdims=True)
    return x if keepdims else np.squeeze(x, axis=axes)
_sympy_exp = np.frompyfunc(sympy.exp, 1, 1)
_sympy_log = np.frompyfunc(sympy.log, 1, 1)


def _sympy_logsumexp(x, axis=None, keepdims=False):
    x = np.asarray(x, dtype=object)
    return _sympy_log(np.sum(_sympy_exp(x), axis=axis, keepdims=keepdims))


def _sympy_count(x, axis):
    shape = np.shape(x)
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    return int(np.prod([shape[a] for a in axes]))


# ---- the table ----

add = Primitive(
    "add", lambda x, y: x + y, lambda x, y: x + y,
    vjp=[lambda g, ans, x, y: g, lambda g, ans, x, y: g],
    jvp=[lambda t, ans, x, y: t, lambda t, ans, x, y: t],
    scalar=operator.add,
)
subtract = Primitive(
    "subtract", lambda x, y: x - y, lambda x, y: x - y,
    vjp=[lambda g, ans, x, y: g, lambda g, ans, x, y: -g],
    jvp=[lambda t, ans, x, y: t, lambda t, ans, x, y: -t],
    scalar=operator.sub,
)
multiply = Primitive(
    "multiply", lambda x, y: x * y, lambda x, y: x * y,
    vjp=[lambda g, ans, x, y: g * y, lambda g, ans, x, y: g * x],
    jvp=[lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t],
    scalar=operator.mul,
)
divide = Primitive(
    "divide", lambda x, y: x / y, lambda x, y: x / y,
    vjp=[lambda g, ans, x, y: g / y, lambda g, ans, x, y: -g * ans / y],
    jvp=[lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * (x / y) / y],  # y*y underflows
    scalar=_divide_scalar,
)
negative = Primitive(
    "negative", lambda x: -x, lambda x: -x,
    vjp=[lambda g, ans, x: -g],
    jvp=[lambda t, ans, x: -t],
    scalar=lambda x: -x,
)


def _log_or_zero(x):
    """log(x) where x != 0 and 0 where x == 0: d(x**y)/dy at x = 0 is 0, not 0 * -inf."""
    return log(where(primal(x) == 0, 1.0, x))


def _base(x, y):
    """x, but 1.0 where x == 0 and y == 0: x**0 is 1 everywhere, so y * x**(y - 1) must be 0
    there, not 0 * inf. Only the base is replaced: d/dy of y * x**(y - 1) keeps its 1/x."""
    zero = primal(y) == 0
    if type(zero) in (bool, np.bool_) and not zero:  # a nonzero exponent: the usual case
        return x
    return where(zero, where(primal(x) == 0, 1.0, x), x)


power = Primitive(
    "power", lambda x, y: x**y, lambda x, y: x**y,
    vjp=[
        lambda g, ans, x, y: g * y * power(_base(x, y), y - 1),  # power: nan, never complex
        lambda g, ans, x, y: g * ans * _log_or_zero(x),
    ],
    jvp=[
        lambda t, ans, x, y: t * y * power(_base(x, y), y - 1),
        lambda t, ans, x, y: t * _log_or_zero(x) * x**y,
    ],
    scalar=_power_scalar,
)

exp = Primitive(
    "exp", np.exp, sympy.exp,
    vjp=[lambda g, ans, x: g * ans],
    jvp=[lambda t, ans, x: t * exp(x)],
    scalar=_exp_scalar,
    grammar=True,
)
log = Primitive(
    "log", np.log, sympy.log,
    vjp=[lambda g, ans, x: g / x],
    jvp=[lambda t, ans, x: t * x**-1],
    scalar=_log_scalar,
    grammar=True,
)
sqrt = Primitive(
    "sqrt", np.sqrt, sympy.sqrt,
    vjp=[lambda g, ans, x: g * 0.5 / ans],
    jvp=[lambda t, ans, x: t / (2 * sqrt(x))],
    scalar=lambda x: math.sqrt(x) if x >= 0 else _NAN,
    grammar=True,
)
sin = Primitive(
    "sin", np.sin, sympy.sin,
    vjp=[lambda g, ans, x: g * cos(x)],
    jvp=[lambda t, ans, x: t * cos(x)],
    scalar=_guarded(math.sin, None),
    grammar=True,
)
cos = Primitive(
    "cos", np.cos, sympy.cos,
    vjp=[lambda g, ans, x: -g * sin(x)],
    jvp=[lambda t, ans, x: -(t * sin(x))],
    scalar=_guarded(math.cos, None),
    grammar=True,
)
tan = Primitive(
    "tan", np.tan, sympy.tan,
    vjp=[lambda g, ans, x: g * (1 + ans * ans)],
    jvp=[lambda t, ans, x: t / cos(x) ** 2],
    scalar=_guarded(math.tan, None),
    grammar=True,
)
_SATURATED = 1 / 64  # a difference from 1 below this (1 - tanh(x)**2 at |x| > 2.8) has lost
# more than 6 bits of the output's rounding error: recompute it from the input there


def _repaired(d, x, exact):
    """d (C-ordered, overwritten) with its entries below _SATURATED replaced by exact(x) there:
    plain-array rules keep their cheap form where it is accurate and fix only the tail."""
    far = d < _SATURATED
    if np.count_nonzero(far):  # cheaper than far.any() on small arrays
        at = np.flatnonzero(far)
        d.ravel()[at] = exact(x.ravel()[at])
    return d


def _sech2_np(x):
    e = np.exp(-2 * np.abs(x))  # sech(x)**2 = 4 e / (1 + e)**2, with e <= 1: never overflows
    return 4 * e / ((1 + e) * (1 + e))


def _plain(g, ans, x):
    """True for NumPy float arrays of one shape and dtype: the rules' fast branches."""
    return (type(g) is np.ndarray and type(ans) is np.ndarray and type(x) is np.ndarray
            and g.shape == ans.shape == x.shape and g.dtype == ans.dtype == x.dtype
            and x.dtype.kind == "f")


sinh = Primitive(
    "sinh", np.sinh, sympy.sinh,
    vjp=[lambda g, ans, x: g * cosh(x)],
    jvp=[lambda t, ans, x: t * cosh(x)],
    scalar=_guarded(math.sinh, lambda x: math.copysign(_INF, x)),
    grammar=True,
)
cosh = Primitive(
    "cosh", np.cosh, sympy.cosh,
    vjp=[lambda g, ans, x: g * sinh(x)],
    jvp=[lambda t, ans, x: t * sinh(x)],
    scalar=_guarded(math.cosh, lambda x: _INF),
    grammar=True,
)

# Non-differentiable helpers: their outputs are constants under every transform.
sign = Primitive(
    "sign", _sign_np, sympy.sign, vjp=[None], jvp=[None],
    scalar=lambda x: float((x > 0) - (x < 0)) if x == x else _NAN,
    kink=True,
)
heaviside = Primitive(
    "heaviside", _heaviside_np, sympy.Heaviside, vjp=[None, None], jvp=[None, None],
    scalar=_heaviside_scalar,
    kink=True,
)
where = Primitive(
    "where", np.where, _sympy_where,
    vjp=[None, lambda g, ans, c, x, y: where(c, g, 0.0), lambda g, ans, c, x, y: where(c, 0.0, g)],
    jvp=[None, lambda t, ans, c, x, y: where(c, t, 0.0), lambda t, ans, c, x, y: where(c, 0.0, t)],
    scalar=lambda c, x, y: x if c else y,
    kink=True,
)

abs = Primitive(
    "abs", _abs_np, sympy.Abs,
    vjp=[lambda g, ans, x: g * sign(x)],
    jvp=[lambda t, ans, x: sign(x) * t],
    scalar=builtins.abs,
    grammar=True, kink=True,
)


maximum = Primitive(
    "maximum", _maximum_np, sympy.Max,
    vjp=[
        lambda g, ans, x, y: g * heaviside(x - y, 0.5),
        lambda g, ans, x, y: g * heaviside(y - x, 0.5),
    ],
    jvp=[
        lambda t, ans, x, y: t * heaviside(x - y, 0.5),
        lambda t, ans, x, y: t * (1 - heaviside(x - y, 0.5)),
    ],
    scalar=lambda x, y: x if x > y or x != x else y,  # nan wins, as in np.maximum
    kink=True,
)
def _sigmoid_vjp(g, ans, x):
    # ans sigmoid(-x): 1 - ans, the usual form, is 0 from x = 37 on; it is accurate for x <= 0
    if type(x) is float:
        return g * ans * (1.0 - ans if x <= 0 else ans * math.exp(-x))  # = ans sigmoid(-x)
    if _plain(g, ans, x):
        return g * ans * _repaired(np.subtract(1, ans, order="C"), x, lambda v: _sigmoid_np(-v))
    return g * ans * sigmoid(-x)


sigmoid = Primitive(
    "sigmoid", _sigmoid_np, lambda x: 1 / (1 + sympy.exp(-x)),
    vjp=[_sigmoid_vjp],
    jvp=[lambda t, ans, x: t * sigmoid(x) * sigmoid(-x)],
    scalar=_sigmoid_scalar,
    grammar=True, activation=True,
)
def _tanh_vjp(g, ans, x):
    if _plain(g, ans, x):
        # 1 - h * h in one temporary (NumPy elides none inside a function)
        d = np.multiply(ans, ans, order="C")
        np.subtract(1, d, out=d)
        return np.multiply(g, _repaired(d, x, _sech2_np), out=d)
    # 1 - tanh(x)**2 is 0 from |x| = 19 on; sech(x)**2 = 4 sigmoid(2x) sigmoid(-2x) is not
    return g * (4 * sigmoid(2 * x) * sigmoid(-2 * x))


def _tanh_jvp(t, ans, x):
    e = exp(-2 * abs(x))  # sech(x)**2 = 4 e / (1 + e)**2, with e <= 1: never overflows
    return t * (4 * e / (1 + e) ** 2)


tanh = Primitive(
    "tanh", np.tanh, sympy.tanh,
    vjp=[_tanh_vjp],
    jvp=[_tanh_jvp],
    scalar=math.tanh,
    grammar=True, activation=True,
)
def _positive(x):
    """x > 0 entry by entry; for an array of SymPy values, their SymPy relations (NumPy's own
    comparison would ask each relation for a truth value it does not have)."""
    if type(x) is np.ndarray and x.dtype == object:
        return np.frompyfunc(lambda v: v > 0, 1, 1)(x)
    return x > 0


def _nonpositive(x):
    """x where x <= 0, else 0: an argument for exp that cannot overflow (elu's rules)."""
    return where(_positive(x), 0.0, x)


def _relu_np(x):
    _off_switch("relu", x)
    # nan stays nan (a nan input is no negative number); complex input by its real part
    return np.where((np.real(x) > 0) | np.isnan(x), x, 0.0)


def _leaky_relu_np(x, alpha=0.01):
    _off_switch("leaky_relu", x)
    return np.where(np.real(x) > 0, x, alpha * x)


relu = Primitive(
    "relu", _relu_np,
    lambda x: sympy.Piecewise((x, x > 0), (0, True)),
    vjp=[lambda g, ans, x: g * heaviside(x, 0.0)],
    jvp=[lambda t, ans, x: where(_positive(x), t, 0.0)],
    scalar=lambda x: x if x > 0 or x != x else 0.0,
    grammar=True, kink=True, activation=True,
)
leaky_relu = Primitive(
    "leaky_relu", _leaky_relu_np,
    lambda x, alpha=0.01: sympy.Piecewise((x, x > 0), (alpha * x, True)),
    vjp=[
        lambda g, ans, x, alpha=0.01: g * where(_positive(x), 1.0, alpha),
        lambda g, ans, x, alpha=0.01: g * where(_positive(x), 0.0, x),
    ],
    jvp=[
        lambda t, ans, x, alpha=0.01: where(_positive(x), t, alpha * t),
        lambda t, ans, x, alpha=0.01: where(_positive(x), 0.0, t * x),
    ],
    scalar=lambda x, alpha=0.01: x if x > 0 else alpha * x,
    grammar=True, kink=True, activation=True,
)
softplus = Primitive(
    "softplus", _softplus_np, lambda x: sympy.log(1 + sympy.exp(x)),
    vjp=[lambda g, ans, x: g * sigmoid(x)],
    jvp=[lambda t, ans, x: t * exp(-softplus(-x))],  # not 1 - exp(-ans): 0 from x = -37 on
    scalar=_softplus_scalar,
    grammar=True, activation=True,
)
elu = Primitive(
    "elu", _elu_np,
    lambda x, alpha=1.0: sympy.Piecewise((x, x > 0), (alpha * (sympy.exp(x) - 1), True)),
    # not ans + alpha (cancels to 0 at x = -40) nor ans / alpha (nan at alpha = 0); the
    # alpha-derivative is expm1(x) = elu(x, 1) for x <= 0, where exp(x) - 1 would cancel
    vjp=[
        lambda g, ans, x, alpha=1.0: g * where(_positive(x), 1.0, alpha * exp(_nonpositive(x))),
        lambda g, ans, x, alpha=1.0: g * where(_positive(x), 0.0, elu(x)),
    ],
    jvp=[
        lambda t, ans, x, alpha=1.0: where(_positive(x), t, t * alpha * exp(_nonpositive(x))),
        lambda t, ans, x, alpha=1.0: where(_positive(x), 0.0, t * elu(x)),
    ],
    scalar=lambda x, alpha=1.0: x if x > 0 else alpha * math.expm1(x),
    grammar=True, kink=True, activation=True,
)
silu = Primitive(
    "silu", lambda x: x * _sigmoid_np(x), lambda x: x / (1 + sympy.exp(-x)),
    vjp=[lambda g, ans, x: g * sigmoid(x) * (1 + x * sigmoid(-x))],
    jvp=[lambda t, ans, x: t * (sigmoid(x) + ans * sigmoid(-x))],
    scalar=lambda x: x * _sigmoid_scalar(x),
    grammar=True, activation=True,
)

# ---- shapes: reductions, matmul, reshape, transpose, indexing, broadcasting ----


def _keepdims_shape(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    axes = {int(a) % len(shape) for a in (axis if isinstance(axis, tuple | list) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _kept(g, x, axis, keepdims):
    """A reduction's output (or cotangent) g with the reduced axes of x kept, as size 1."""
    return g if keepdims else reshape(g, shape=_keepdims_shape(shape_of(x), axis))


def _unreduce(g, x, axis, keepdims):
    """Spread the cotangent of a reduction back over the shape of its input x."""
    return broadcast_to(_kept(g, x, axis, keepdims), shape=shape_of(x))


def _count(x, ans):
    """How many entries of x were averaged into each entry of ans."""
    return math.prod(shape_of(x)) // builtins.max(1, math.prod(shape_of(ans)))


def _max_share(x, ans, axis, keepdims):
    """Constant weights that split a max's cotangent evenly among the entries that attain it."""
    hit = (primal(x) == primal(_unreduce(ans, x, axis, keepdims))).astype(float)
    return hit / np.sum(hit, axis=axis, keepdims=True)


def sum_to(x, shape):
    """Sum x over broadcast axes so that it has `shape` (the cotangent of a broadcast)."""
    shape = tuple(shape)
    have = shape_of(x)
    if have == shape:
        return x
    lead = len(have) - len(shape)
    if have[lead:] == shape:  # only leading axes were added (a bias): one reduction, no reshape
        return sum(x, axis=tuple(range(lead)))
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and have[lead + i] != 1
    )
    out = sum(x, axis=axes, keepdims=True)
    return reshape(out, shape=shape)


def _sum_np(x, axis=None, keepdims=False):
    # np.sum is a Python wrapper around this reduction; calling it directly halves the cost
    return np.add.reduce(np.asarray(x), axis=axis, keepdims=keepdims)


sum = Primitive(
    "sum", _sum_np, _sympy_reduce(np.sum), elementwise=False,
    vjp=[lambda g, ans, x, axis=None, keepdims=False: _unreduce(g, x, axis, keepdims)],
    jvp=[lambda t, ans, x, axis=None, keepdims=False: sum(t, axis=axis, keepdims=keepdims)],
    scalar=_identity_scalar,
)
mean = Primitive(
    "mean", np.mean,
    lambda x, axis=None, keepdims=False: (
        np.sum(np.asarray(x, dtype=object), axis=axis, keepdims=keepdims) / _sympy_count(x, axis)
    ),
    elementwise=False,
    vjp=[
        # divide the small cotangent, then spread it
        lambda g, ans, x, axis=None, keepdims=False: _unreduce(
            g / _count(x, ans), x, axis, keepdims
        )
    ],
    jvp=[lambda t, ans, x, axis=None, keepdims=False: mean(t, axis=axis, keepdims=keepdims)],
    scalar=_identity_scalar,
)
max = Primitive(
    "max", _max_np, _sympy_max, elementwise=False,
    vjp=[
        lambda g, ans, x, axis=None, keepdims=False: _unreduce(g, x, axis, keepdims)
        * _max_share(x, ans, axis, keepdims)
    ],
    jvp=[
        lambda t, ans, x, axis=None, keepdims=False: sum(
            t * _max_share(x, ans, axis, keepdims), axis=axis, keepdims=keepdims
        )
    ],
    scalar=_identity_scalar,
    kink=True,
)
logsumexp = Primitive(
    "logsumexp", _logsumexp_np, _sympy_logsumexp, elementwise=False,
    vjp=[
        lambda g, ans, x, axis=None, keepdims=False: _kept(g, x, axis, keepdims)
        * exp(x - _kept(ans, x, axis, keepdims))
    ],
    jvp=[
        lambda t, ans, x, axis=None, keepdims=False: sum(
            t * exp(x - _unreduce(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
        )
    ],
    scalar=_identity_scalar,
)


def _ndim(x):
    return x.ndim if type(x) is np.ndarray else np.ndim(x)


def _matmul_vjp_a(g, ans, a, b):
    if _ndim(b) == 1:
        if _ndim(a) == 1:
            return g * b
        return reshape(g, shape=shape_of(g) + (1,)) * b
    if _ndim(a) == 1:
        return matmul(b, g)
    return matmul(g, b.T)


def _matmul_vjp_b(g, ans, a, b):
    if _ndim(a) == 1:
        if _ndim(b) == 1:
            return g * a
        return reshape(a, shape=shape_of(a) + (1,)) * g
    if _ndim(b) == 1:
        return matmul(g, a)
    return matmul(a.T, g)


def _matmul_np(a, b):
    if not (1 <= _ndim(a) <= 2 and 1 <= _ndim(b) <= 2):
        raise ValueError("matmul takes 1-D and 2-D arrays; use multiply for scalars")
    return np.matmul(a, b)


matmul = Primitive(
    "matmul", _matmul_np, lambda a, b: np.matmul(np.asarray(a), np.asarray(b)),
    elementwise=False,
    vjp=[_matmul_vjp_a, _matmul_vjp_b],
    jvp=[lambda t, ans, a, b: matmul(t, b), lambda t, ans, a, b: matmul(a, t)],
)
reshape = Primitive(
    "reshape", lambda x, shape: np.asarray(x).reshape(shape),
    lambda x, shape: np.reshape(np.asarray(x, dtype=object), shape), elementwise=False,
    vjp=[lambda g, ans, x, shape: reshape(g, shape=shape_of(x))],
    jvp=[lambda t, ans, x, shape: reshape(t, shape=shape)],
)
transpose = Primitive(
    "transpose", lambda x, axes=None: np.asarray(x).transpose(axes),
    lambda x, axes=None: np.transpose(np.asarray(x, dtype=object), axes), elementwise=False,
    vjp=[
        lambda g, ans, x, axes=None: transpose(
            g, axes=None if axes is None else tuple(np.argsort(axes))
        )
    ],
    jvp=[lambda t, ans, x, axes=None: transpose(t, axes=axes)],
)
broadcast_to = Primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    lambda x, shape: np.broadcast_to(np.asarray(x, dtype=object), shape), elementwise=False,
    vjp=[lambda g, ans, x, shape: sum_to(g, shape_of(x))],
    jvp=[lambda t, ans, x, shape: broadcast_to(t, shape=shape)],
    scalar=lambda x, shape: x if shape == () else np.broadcast_to(x, shape),
)
take = Primitive(
    "take", lambda x, index: x[index], lambda x, index: np.asarray(x, dtype=object)[index],
    elementwise=False,
    vjp=[lambda g, ans, x, index: untake(g, index=index, shape=shape_of(x))],
    jvp=[lambda t, ans, x, index: take(t, index=index)],
)
untake = Primitive(
    "untake", _untake_np, _untake_np, elementwise=False,
    vjp=[lambda g, ans, x, index, shape: take(g, index=index)],
    jvp=[lambda t, ans, x, index, shape: untake(t, index=index, shape=shape)],
)

# The table: every Primitive defined above, in order. Everything else that needs a list of
# operations (the grammar, the activations, the switches, the tests) derives it from here.
PRIMITIVES = {p.name: p for p in list(globals().values()) if isinstance(p, Primitive)}
