"""Forward mode: dual numbers carry a tangent through the same primitives (JVP rules).
jvp, jacfwd and Hessian-vector products (forward-over-reverse) are built on it."""

from __future__ import annotations

import numpy as np

from diffkit import ops
from diffkit.core import Box, new_level, primal, shape_of
from diffkit.errors import InputError
from diffkit.reverse import _argnums, _as_output, check_input, grad, on_numpy_scalars


class Dual(Box):
    """A primal value and its tangent, at one nesting level."""

    __slots__ = ("value", "tangent", "level")

    def __init__(self, value, tangent, level):
        self.value = value
        self.tangent = tangent
        self.level = level

    def apply(self, prim, args, params):
        level = self.level
        vals = list(args)
        tangents = []
        for i, a in enumerate(args):
            if type(a) is Dual and a.level == level:
                vals[i] = a.value
                tangents.append((i, a.tangent))
        ans = prim(*vals, **params)
        out = None
        for i, t in tangents:
            rule = prim.jvp[i]
            if rule is None:
                continue
            try:
                dt = rule(t, ans, *vals, **params) if params else rule(t, ans, *vals)
            except ArithmeticError:
                dt = on_numpy_scalars(rule, t, ans, vals, params)
            out = dt if out is None else out + dt
        if out is None:
            return ans
        if not (type(out) is float and type(ans) is float) and shape_of(out) != shape_of(ans):
            out = ops.broadcast_to(out, shape=shape_of(ans))
        return Dual(ans, out, level)

    def __repr__(self):
        return f"Dual({self.value!r}, {self.tangent!r})"


def _check_tangent(t, p, position):
    if shape_of(t) != shape_of(p):
        raise InputError(
            f"tangent {position} has shape {shape_of(t)} but its primal has shape {shape_of(p)}"
        )
    return check_input(t, position)


def jvp(f, primals, tangents):
    """Return (f(*primals), J @ tangents): the output and its directional derivative.

    Example:
        >>> import diffkit as dk
        >>> jvp(dk.sin, (0.0,), (2.0,))
        (0.0, 2.0)
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise InputError(f"jvp got {len(primals)} primals but {len(tangents)} tangents")
    level = new_level()
    duals = [
        Dual(check_input(p, i), _check_tangent(t, p, i), level)
        for i, (p, t) in enumerate(zip(primals, tangents))
    ]
    return _split(f(*duals), level)


def _split(out, level):
    """Return (primal, tangent) of an output, or of each output of a tuple."""
    if isinstance(out, tuple):
        pairs = [_split(o, level) for o in out]
        return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
    if type(out) is Dual and out.level == level:
        return _as_output(out.value), _as_output(out.tangent)
    value = primal(out)
    return _as_output(out), (0.0 if np.ndim(value) == 0 else np.zeros(np.shape(value)))


def jacfwd(f, argnums=0):
    """Return a function computing the Jacobian of f by forward mode, one JVP per input entry.

    The result has shape out.shape + arg.shape (a tuple of them for a tuple of argnums).

    Example:
        >>> import numpy as np
        >>> jacfwd(lambda x: 2.0 * x)(np.array([1.0, 2.0]))
        array([[2., 0.],
               [0., 2.]])
    """

    nums = _argnums(argnums)

    def jacfwd_f(*args, **kwargs):
        blocks = []
        for n in nums:
            x = check_input(args[n], n)
            in_shape = shape_of(x)
            columns = []
            for k in range(int(np.prod(in_shape))):
                basis = np.zeros(in_shape)
                basis.flat[k] = 1.0
                tangent = float(basis) if in_shape == () else basis

                def along(xn, n=n):
                    return f(*args[:n], xn, *args[n + 1 :], **kwargs)

                columns.append(jvp(along, (x,), (tangent,))[1])
            blocks.append(_assemble(columns, in_shape))
        return tuple(blocks) if isinstance(argnums, tuple | list) else blocks[0]

    return jacfwd_f


def _assemble(columns, in_shape):
    """Stack JVP columns (each shaped like the output, or a tuple of outputs) into Jacobians."""
    if isinstance(columns[0], tuple):
        return tuple(_assemble([c[j] for c in columns], in_shape) for j in range(len(columns[0])))
    out_shape = shape_of(columns[0])
    if out_shape == () and in_shape == ():
        return columns[0]
    if any(isinstance(c, Box) for c in columns):
        raise InputError("a Jacobian cannot be taken inside another transform; nest grad instead")
    return np.moveaxis(np.array(columns, dtype=float), 0, -1).reshape(out_shape + in_shape)


def hvp(f, primals, tangents):
    """Return the Hessian-vector products H @ tangents of scalar f, forward-over-reverse.

    Example:
        >>> hvp(lambda x: x**3, (2.0,), (1.0,))
        (12.0,)
    """
    argnums = tuple(range(len(primals)))
    return jvp(lambda *xs: grad(f, argnums)(*xs), primals, tangents)[1]
