"""ArrayBox: a traced value that behaves like a NumPy value. Its operators, array attributes
and NumPy's own functions (through __array_ufunc__ and __array_function__) run diffkit's
primitives, so code written for floats and arrays runs unchanged under every transform."""

from __future__ import annotations

from diffkit import numpy_dispatch, ops
from diffkit.core import Box


class ArrayBox(Box):
    """A Box with the arithmetic and array methods of a NumPy value (see the module)."""

    __slots__ = ()

    # NumPy hands its functions of boxes here: see numpy_dispatch.py.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_dispatch.ufunc(self, ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_dispatch.function(func, args, kwargs)

    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.subtract(self, other)

    def __rsub__(self, other):
        return ops.subtract(other, self)

    def __mul__(self, other):
        return ops.multiply(self, other)

    def __rmul__(self, other):
        return ops.multiply(other, self)

    def __truediv__(self, other):
        return ops.divide(self, other)

    def __rtruediv__(self, other):
        return ops.divide(other, self)

    def __pow__(self, other):
        return ops.power(self, other)

    def __rpow__(self, other):
        return ops.power(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.take(self, index=index)

    @property
    def T(self):
        return ops.transpose(self)

    def reshape(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return ops.reshape(self, shape=shape)

    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis=axis, keepdims=keepdims)
