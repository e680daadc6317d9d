"""NumPy's functions on traced values: the ufuncs and array functions that run as diffkit
primitives, constants computed from primal values, and a one-line refusal for everything else."""

from __future__ import annotations

import numpy as np

from diffkit import ops
from diffkit.core import Box, primal, shape_of
from diffkit.errors import TracedValueError


def ufunc(box, ufunc, method, inputs, kwargs):
    """Return ufunc(*inputs) for Box.__array_ufunc__: through a box's own operator method (its
    fast paths apply, so `ndarray * box` costs what `box * ndarray` does) or the primitive of
    that name; comparisons and predicates on the primal values (constants, like `x > 0`)."""
    if method == "__call__" and not kwargs:
        name = _UFUNC_OPERATORS.get(ufunc)
        if name is not None:
            if len(inputs) == 1:
                return getattr(inputs[0], name)()
            a, b = inputs
            if isinstance(a, Box):
                return getattr(a, name)(b)
            return getattr(b, "__r" + name[2:])(a)
        name = _UFUNC_PRIMITIVES.get(ufunc)
        if name is not None:
            return getattr(ops, name)(*inputs)
        if ufunc in _UFUNC_PREDICATES:
            return ufunc(*(primal(x) for x in inputs))
    if method == "reduce" and ufunc in _UFUNC_REDUCTIONS and len(inputs) == 1:
        axis, keepdims = kwargs.pop("axis", 0), kwargs.pop("keepdims", False)
        _unsupported(f"np.{ufunc.__name__}.reduce", _UFUNC_REDUCTIONS[ufunc], **kwargs)
        return getattr(ops, _UFUNC_REDUCTIONS[ufunc])(inputs[0], axis=_axis(axis),
                                                      keepdims=bool(keepdims))
    if method == "__call__" and (ufunc in _UFUNC_OPERATORS or ufunc in _UFUNC_PRIMITIVES):
        given = ", ".join(k + "=" for k in kwargs)
        raise TracedValueError(
            f"np.{ufunc.__name__} cannot take {given} for a value traced by {box.transform}:"
            f" call np.{ufunc.__name__} without {given}"
        )
    call = "" if method == "__call__" else f".{method}"
    raise TracedValueError(_not_differentiable(f"np.{ufunc.__name__}{call}"))


def function(func, args, kwargs):
    """Return func(*args, **kwargs) for Box.__array_function__: the primitive it names, or for
    shape and dtype queries (and zeros_like ...) the answer on the primal values."""
    adapter = _ARRAY_FUNCTIONS.get(func)
    if adapter is not None:
        return adapter(*args, **kwargs)
    if func in _ARRAY_INSPECTIONS:
        return func(*(primal(a) for a in args), **kwargs)
    module = getattr(func, "__module__", None) or "numpy"
    where = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    raise TracedValueError(_not_differentiable(f"{where}.{func.__name__}"))


def _not_differentiable(name):
    return (
        f"{name} is not differentiable in diffkit; use diffkit's functions on traced values"
        f" (dk.exp, dk.sum, dk.where, dk.maximum, ...) or call it outside the transform"
    )


# The ufuncs a box answers: by its own operator method, or by the ops primitive of that name.
_UFUNC_OPERATORS = {
    np.add: "__add__", np.subtract: "__sub__", np.multiply: "__mul__",
    np.true_divide: "__truediv__", np.power: "__pow__", np.matmul: "__matmul__",
    np.negative: "__neg__", np.positive: "__pos__",
}
_UFUNC_PRIMITIVES = {
    np.exp: "exp", np.log: "log", np.sqrt: "sqrt", np.sin: "sin", np.cos: "cos", np.tan: "tan",
    np.tanh: "tanh", np.sinh: "sinh", np.cosh: "cosh", np.absolute: "abs",
    np.maximum: "maximum",
}
# np.add.reduce(x) is what np.sum calls on arrays; NumPy (to 2.4 at least, numpy#31677) leaks
# the arguments of a reduction whose override raises, so the usual reductions must not raise.
_UFUNC_REDUCTIONS = {np.add: "sum", np.maximum: "max"}
_UFUNC_PREDICATES = frozenset({
    np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
    np.isfinite, np.isnan, np.isinf, np.signbit,
})


def _unsupported(shown, name, **given):
    """Raise for the keyword arguments of NumPy's `shown` that primitive `name` has no use for."""
    used = [k for k, v in given.items() if v is not None]
    if used:
        raise TracedValueError(
            f"{shown} cannot take {', '.join(k + '=' for k in used)} on traced values:"
            f" call dk.{name} instead"
        )


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _unsupported("np.sum", "sum", dtype=dtype, out=out, **rest)
    return ops.sum(a, axis=_axis(axis), keepdims=bool(keepdims))


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
    _unsupported("np.mean", "mean", dtype=dtype, out=out, **rest)
    return ops.mean(a, axis=_axis(axis), keepdims=bool(keepdims))


def _np_max(a, axis=None, out=None, keepdims=False, **rest):
    _unsupported("np.max", "max", out=out, **rest)
    return ops.max(a, axis=_axis(axis), keepdims=bool(keepdims))


def _np_where(condition, x=None, y=None):
    if x is None or y is None:
        raise TracedValueError("np.where(condition) of a traced value has no derivative: pass"
                               " np.where(condition, x, y), or call it outside the transform")
    return ops.where(condition, x, y)


def _np_dot(a, b, out=None):
    _unsupported("np.dot", "matmul", out=out)
    if len(shape_of(a)) == 0 or len(shape_of(b)) == 0:
        return a * b
    if len(shape_of(a)) <= 2 and len(shape_of(b)) <= 2:
        return ops.matmul(a, b)
    raise TracedValueError("np.dot of arrays above 2-D is not differentiable in diffkit; use"
                           " dk.matmul on 1-D and 2-D arrays")


def _np_reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    shape = newshape if shape is None else shape
    if order != "C":
        raise TracedValueError(f"np.reshape with order={order!r} is not differentiable in"
                               f" diffkit; reshape in C order (x.reshape(shape))")
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    return ops.reshape(a, shape=tuple(int(n) for n in shape))


def _np_transpose(a, axes=None):
    if axes is None:
        return ops.transpose(a)
    return ops.transpose(a, axes=tuple(int(n) for n in axes))


_ARRAY_FUNCTIONS = {
    np.sum: _np_sum, np.mean: _np_mean, np.max: _np_max, np.amax: _np_max, np.where: _np_where,
    np.dot: _np_dot, np.reshape: _np_reshape, np.transpose: _np_transpose,
}
_ARRAY_INSPECTIONS = frozenset({
    np.shape, np.ndim, np.size, np.result_type, np.iscomplexobj, np.isrealobj,
    np.zeros_like, np.ones_like, np.empty_like, np.full_like,
})
