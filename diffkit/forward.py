"""Forward mode: dual numbers carry a tangent through the same primitives (JVP rules).
jvp, jacfwd and Hessian-vector products (forward-over-reverse) are built on it."""

from __future__ import annotations

import math

import numpy as np

from diffkit import ops
from diffkit.arguments import (
    as_output,
    check_input,
    positions,
    rebuild,
    several_argnums,
    stack,
)
from diffkit.boxes import ArrayBox
from diffkit.core import Box, new_level, on_numpy_scalars, primal, shape_of
from diffkit.errors import InputError


class Dual(ArrayBox):
    """A primal value and its tangent, at one nesting level."""

    __slots__ = ("value", "tangent", "level")
    transform = "forward mode (jvp, jacfwd)"

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
    """Return (primal, tangent) of an output, or of each output of a tuple or list."""
    if isinstance(out, tuple | list):
        pairs = [_split(o, level) for o in out]
        return rebuild(out, (p for p, _ in pairs)), rebuild(out, (t for _, t in pairs))
    if type(out) is Dual and out.level == level:
        return as_output(out.value), as_output(out.tangent)
    value = primal(out)
    return as_output(out), (0.0 if np.ndim(value) == 0 else np.zeros(np.shape(value)))


def jacfwd(f, argnums=0):
    """Return a function computing the Jacobian of f by forward mode, one JVP per input entry.

    The result has shape out.shape + arg.shape. As in JAX, a tuple of argnums gives a tuple of
    blocks, one per argument, and f returning a tuple (or list) gives one over its outputs of
    those: `jacfwd(f, (0, 1))(x, y)[i][j]` is d out_i / d arg_j.

    Example:
        >>> import numpy as np
        >>> jacfwd(lambda x: 2.0 * x)(np.array([1.0, 2.0]))
        array([[2., 0.],
               [0., 2.]])
    """
    resolve = positions(argnums)
    many = several_argnums(argnums)

    def jacfwd_f(*args, **kwargs):
        _, inputs, slots = resolve(len(args))
        per_input = [_columns(f, args, n, kwargs) for n in inputs]
        outputs = per_input[0][2]  # an output tangent: a tuple or list for several outputs
        several = isinstance(outputs, tuple | list)
        blocks = []
        for j in range(len(outputs) if several else 1):
            per = [
                _assemble([c[j] if several else c for c in columns], in_shape,
                          probe[j] if several else probe)
                for columns, in_shape, probe in per_input
            ]
            blocks.append(tuple(per[s] for s in slots) if many else per[slots[0]])
        return rebuild(outputs, blocks) if several else blocks[0]

    return jacfwd_f


def _columns(f, args, n, kwargs):
    """The JVPs of f along each entry of argument n: (columns, the argument's shape, an output
    tangent, which gives the outputs' shapes even for an argument with no entries)."""
    x = check_input(args[n], n)
    in_shape = shape_of(x)

    def along(xn):
        return f(*args[:n], xn, *args[n + 1 :], **kwargs)

    columns = []
    for k in range(math.prod(in_shape)):
        basis = np.zeros(in_shape)
        basis.flat[k] = 1.0
        columns.append(jvp(along, (x,), (float(basis) if in_shape == () else basis,))[1])
    probe = columns[0] if columns else jvp(along, (x,), (np.zeros(in_shape),))[1]
    return columns, in_shape, probe


def _assemble(columns, in_shape, probe):
    """Stack JVP columns (each shaped like the output `probe`) into an out + in_shape Jacobian."""
    out_shape = shape_of(probe)
    if not columns:
        return np.zeros(out_shape + in_shape)
    if out_shape == () and in_shape == ():
        return columns[0]
    if not any(isinstance(c, Box) for c in columns):
        return np.moveaxis(np.array(columns, dtype=float), 0, -1).reshape(out_shape + in_shape)
    # inside another transform: stack the columns as rows with primitives, then move that axis
    rows = stack(columns, (len(columns),), out_shape)
    axes = (*range(1, len(out_shape) + 1), 0)
    return ops.reshape(ops.transpose(rows, axes=axes), shape=out_shape + in_shape)
