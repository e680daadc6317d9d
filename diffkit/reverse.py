"""Reverse mode: a tape of primitive applications, walked backwards once, iteratively.
grad, value_and_grad, vjp, jacobian and hessian are built on it."""

from __future__ import annotations

import dis
import gc
import math
import types
from typing import NamedTuple

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
from diffkit.core import Box, Primitive, new_level, on_numpy_scalars, primal, shape_of
from diffkit.errors import InputError


def _operator(prim, reflected=False):
    """A Tracer method applying binary prim to (self, other), or (other, self) if reflected.

    Fast when the other operand is a number or a tracer of the same tape (the bulk of a scalar
    graph); anything else goes through the primitive's generic dispatch.
    """

    scalar = prim.scalar

    def method(self, other):
        kind = type(other)
        if kind is Tracer and other.tape is self.tape:
            vals = (other.value, self.value) if reflected else (self.value, other.value)
            parents = ((0, other.index), (1, self.index)) if reflected else (
                (0, self.index), (1, other.index))
        elif kind is float or kind is int or (kind is np.ndarray and other.dtype.kind in "fiub"):
            other = float(other) if kind is int else other  # a constant number or array
            vals = (other, self.value) if reflected else (self.value, other)
            parents = ((1, self.index),) if reflected else ((0, self.index),)
        else:
            return prim(other, self) if reflected else prim(self, other)
        x, y = vals
        tape = self.tape
        if type(x) is float and type(y) is float and scalar is not None:
            ans = scalar(x, y)
            tape.append((prim, vals, None, ans, parents))
        else:
            ans = prim(x, y)
            tape.append(_entry(prim, vals, None, ans, parents))
        return Tracer(ans, self.level, tape, len(tape) - 1)

    return method


class Tracer(ArrayBox):
    """A value recorded on a tape: `index` is its position there, `level` its transform's.

    A tape entry is (prim, input values, params, output value, parents), where parents holds
    a (position, tape index) pair for each input that is a differentiable tracer.
    """

    __slots__ = ("value", "level", "tape", "index")
    transform = "reverse mode (grad, jacobian, vjp)"

    def __init__(self, value, level, tape, index):
        self.value = value
        self.level = level
        self.tape = tape
        self.index = index

    def apply(self, prim, args, params):
        if len(args) == 1 and not params and prim.vjp[0] is not None:
            value = self.value
            tape = self.tape
            if type(value) is float and prim.scalar is not None:
                ans = prim.scalar(value)
                tape.append((prim, (value,), None, ans, ((0, self.index),)))
            else:
                ans = prim(value)
                tape.append(_entry(prim, (value,), None, ans, ((0, self.index),)))
            return Tracer(ans, self.level, tape, len(tape) - 1)
        level = self.level
        vals = list(args)
        parents = []
        for i, a in enumerate(args):
            if type(a) is Tracer and a.level == level:
                vals[i] = a.value
                if prim.vjp[i] is not None:
                    parents.append((i, a.index))
        ans = prim(*vals, **params)
        if not parents:
            return ans
        tape = self.tape
        tape.append(_entry(prim, vals, params, ans, parents))
        return Tracer(ans, level, tape, len(tape) - 1)

    # Arithmetic on scalar tracers is most of a small graph: record it without generic dispatch.
    __add__ = _operator(ops.add)
    __radd__ = _operator(ops.add, reflected=True)
    __sub__ = _operator(ops.subtract)
    __rsub__ = _operator(ops.subtract, reflected=True)
    __mul__ = _operator(ops.multiply)
    __rmul__ = _operator(ops.multiply, reflected=True)
    __truediv__ = _operator(ops.divide)
    __rtruediv__ = _operator(ops.divide, reflected=True)
    __pow__ = _operator(ops.power)
    __rpow__ = _operator(ops.power, reflected=True)
    __matmul__ = _operator(ops.matmul)
    __rmatmul__ = _operator(ops.matmul, reflected=True)

    def __neg__(self):
        ans = -self.value
        tape = self.tape
        tape.append((ops.negative, (self.value,), None, ans, ((0, self.index),)))
        return Tracer(ans, self.level, tape, len(tape) - 1)

    def __repr__(self):
        return f"Tracer({self.value!r})"


# ---- what a tape entry keeps: only the large arrays that some VJP rule of its primitive reads
# (as PyTorch saves only the tensors a backward needs): the rest are freed during the forward

_LARGE = 1 << 16  # bytes; smaller arrays cost less to keep than to check
_ZEROS = bytes(64)
_read_by = {}  # a rule -> the names of the parameters its code reads (None: cannot tell)


def _reads(rule):
    if rule not in _read_by:
        names = None
        if type(rule) is types.FunctionType:  # not a method: its first parameter is self
            code = rule.__code__
            names = set(code.co_cellvars)  # captured by an inner function: read there
            for op in dis.get_instructions(code):
                argval = op.argval  # a tuple for fused loads (LOAD_FAST_LOAD_FAST)
                for name in argval if isinstance(argval, tuple) else (argval,):
                    if isinstance(name, str):
                        names.add(name)
        _read_by[rule] = names
    return _read_by[rule]


def _unread_positions(prim):
    """The positions (1: ans, 2 + k: input k) that no VJP rule of prim reads, as told from the
    rules' code; a rule whose code cannot be read reads everything."""
    unread = None
    for rule in prim.vjp:
        if rule is None:
            continue
        names = _reads(rule)
        if names is None:
            return frozenset()
        code = rule.__code__
        mine = {i for i in range(1, code.co_argcount) if code.co_varnames[i] not in names}
        unread = mine if unread is None else unread & mine
    return frozenset(unread or ())


def _stand_in(x):
    """An array with x's shape and dtype and no memory: what _fit needs of an unread input."""
    return np.ndarray(x.shape, x.dtype, _ZEROS, 0, (0,) * x.ndim)


def _large(x):
    return type(x) is np.ndarray and x.nbytes >= _LARGE and x.dtype.itemsize <= len(_ZEROS)


_saved = {}  # prim -> (its vjp rules tuple when last looked at, their unread positions)


def _entry(prim, vals, params, ans, parents):
    """The tape entry (prim, vals, params, ans, parents), with every large array that no VJP
    rule of prim reads dropped (ans) or replaced by a stand-in of its shape and dtype (inputs)."""
    large = type(ans) is np.ndarray and ans.nbytes >= _LARGE
    for v in vals:
        if type(v) is np.ndarray and v.nbytes >= _LARGE:
            large = True
    if not large:
        return (prim, vals, params, ans, parents)
    rules, unread = _saved.get(prim, (None, None))
    if rules is not prim.vjp:  # first use, or the rules were replaced (set_rules)
        rules, unread = prim.vjp, _unread_positions(prim)
        _saved[prim] = (rules, unread)
    if 1 in unread:
        ans = None
    vals = tuple(_stand_in(v) if 2 + k in unread and _large(v) else v for k, v in enumerate(vals))
    return (prim, vals, params, ans, parents)


def _fit(ct, like):
    """Make a cotangent match its primal: summed over the axes along which the primal was
    broadcast, and in the primal's float dtype (a float32 input keeps float32 cotangents)."""
    kind = type(ct)
    if kind is float and type(like) is float:
        return ct
    if kind is np.ndarray and type(like) is np.ndarray and ct.shape == like.shape and (
            ct.dtype == like.dtype):
        return ct  # the common array case: nothing to sum or cast
    shape = shape_of(like)
    if shape_of(ct) != shape:
        ct = ops.sum_to(ct, shape)
    if type(ct) is np.ndarray and type(like) is np.ndarray and ct.dtype != like.dtype:
        if ct.dtype.kind == "f" and like.dtype.kind == "f":
            ct = ct.astype(like.dtype)
    return ct


def backward(tape, out_index, seed, stop=0, release=False):
    """Return the cotangent of every tape entry, given `seed` for entry `out_index`.

    Entries out_index down to stop are visited once each, newest first: the tape's order is a
    topological order. Entries below `stop` (the inputs) only receive cotangents. `release`:
    the tape is used once, so each entry is dropped once visited (its arrays freed early).
    """
    cts = [None] * len(tape)
    cts[out_index] = seed
    for i in range(out_index, stop - 1, -1):
        g = cts[i]
        if g is None:
            continue
        cts[i] = None  # spent: free it as soon as it has been pushed to the parents
        prim, vals, params, ans, parents = tape[i]
        if release:
            tape[i] = None
        rules = prim.vjp
        arity = 0 if params else len(vals)
        for k, j in parents:
            # CPython inlines positional calls of Python functions, not f(*args): spell out
            # the common arities.
            try:
                if arity == 2:
                    ct = rules[k](g, ans, vals[0], vals[1])
                elif arity == 1:
                    ct = rules[k](g, ans, vals[0])
                else:
                    ct = rules[k](g, ans, *vals, **(params or {}))
            except ArithmeticError:
                ct = on_numpy_scalars(rules[k], g, ans, vals, params)
            if type(ct) is not float or type(vals[k]) is not float:
                ct = _fit(ct, vals[k])
            old = cts[j]
            cts[j] = ct if old is None else old + ct
    return cts


def _as_gradient(ct, like, owned=False):
    """Shape a cotangent like its primal: float for float, a fresh float array for an array.

    `owned`: ct was made by the backward pass from a float seed and is handed out nowhere else,
    so an array that owns its memory can be returned without a copy.
    """
    if type(ct) is float and type(like) is float:
        return ct
    if type(like) is float:
        if ct is None:
            return 0.0
        if isinstance(ct, Box):
            return ct
        return float(np.real(ct)) if np.ndim(ct) == 0 else float(np.sum(ct))
    if isinstance(ct, Box):
        return ct
    like = np.asarray(like)
    dtype = like.dtype if like.dtype.kind in "fc" else np.dtype(float)
    if ct is None:
        return np.zeros(like.shape, dtype=dtype)
    if type(ct) is np.ndarray and ct.shape == like.shape and ct.dtype == dtype:
        return ct if owned and ct.flags.owndata and ct.flags.writeable else ct.copy()
    return np.array(np.broadcast_to(ct, like.shape), dtype=dtype)


def _trace(f, args, inputs, kwargs):
    """Run f with the arguments at positions `inputs` (distinct, in range) replaced by tracers
    (tape entries 0, 1, ...). Returns (output, tape, level)."""
    args = list(args)
    level = new_level()
    tape = [None] * len(inputs)
    for i, n in enumerate(inputs):
        x = args[n]
        args[n] = Tracer(x if type(x) is float else check_input(x, n), level, tape, i)
    return f(*args, **kwargs), tape, level


class TapeEntry(NamedTuple):
    """One entry of a traced tape: a primitive applied to `inputs` (values) with `params`,
    giving `output`; `parents` pairs each traced input's position with the index of the entry
    that computed it. The first entries are f's arguments (primitive None)."""

    primitive: Primitive | None
    inputs: tuple
    params: dict
    output: object
    parents: tuple


class Trace(NamedTuple):
    """f's value, its tape (a tuple of TapeEntry in topological order) and the index of the
    entry that computed the value (None when the value does not depend on the arguments)."""

    value: object
    entries: tuple
    output: int | None


def trace(f, *args) -> Trace:
    """Run f on args, recording every primitive application (the tape reverse mode walks).

    Arrays of 64 KiB and more that no VJP rule of their primitive reads are not kept (None or
    an empty stand-in), as on every tape.

    Example:
        >>> import diffkit as dk
        >>> t = dk.trace(lambda x, w: dk.sigmoid(w * x), 1.0, 0.0)
        >>> [e.primitive.name for e in t.entries[2:]], t.output, t.value
        (['multiply', 'sigmoid'], 3, 0.5)
    """
    out, tape, level = _trace(f, args, tuple(range(len(args))), {})
    entries = [TapeEntry(None, (), {}, args[k], ()) for k in range(len(args))]
    entries += [TapeEntry(prim, tuple(vals), dict(params or {}), ans, tuple(parents))
                for prim, vals, params, ans, parents in tape[len(args):]]
    index = out.index if type(out) is Tracer and out.level == level else None
    return Trace(as_output(_value(out, level)), tuple(entries), index)


def _pull(out, tape, level, seed, count):
    """Cotangents of the first `count` tape entries (the inputs), for output cotangent seed."""
    if not (type(out) is Tracer and out.level == level):
        return [None] * count
    return backward(tape, out.index, seed, count)[:count]


def _value(out, level):
    return out.value if type(out) is Tracer and out.level == level else out


def _value_and_grad(f, nums, inputs, slots, args, kwargs):
    """Trace f once and pull 1.0 back: (value, tuple of gradients for the arguments at nums);
    nums, inputs and slots as _positions gives them.

    The cyclic garbage collector is paused meanwhile: a tape holds no reference cycles (all of
    it is freed by reference counting), yet every full collection would walk all of its
    entries, which doubled the time of a 10^5-deep chain.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        out, tape, level = _trace(f, args, inputs, kwargs)
        if type(out) is not Tracer or out.level != level:
            value = as_output(_check_scalar(out))
            return value, tuple(_as_gradient(None, args[n]) for n in nums)
        value = out.value
        seed = 1.0
        if type(value) is not float:
            if isinstance(value, np.floating | np.ndarray) and value.dtype.kind == "f":
                # a float32 loss seeds float32: a Python 1.0 turns float64 once it is reshaped,
                # and the whole backward pass with it
                seed = value.dtype.type(1)
            value = as_output(_check_scalar(value))
        cts = backward(tape, out.index, seed, len(inputs), release=True)
    finally:
        if paused:
            gc.enable()
    if len(nums) == 1 and type(cts[0]) is float and type(args[nums[0]]) is float:
        return value, (cts[0],)  # grad(f)(x) of a float: 12% of its cost is the loop below
    grads = cts[:len(nums)] if inputs is nums else [cts[s] for s in slots]
    handed = set()  # ids of the cotangents already handed out as they are
    for i, n in enumerate(nums):
        ct = grads[i]
        like = args[n]
        if type(ct) is not float or type(like) is not float:
            # one array may reach two inputs (x + y): only its first gradient may keep it
            grads[i] = _as_gradient(ct, like, id(ct) not in handed)
            handed.add(id(ct))
    return value, tuple(grads)


_NUMBERS = (Box, int, complex, np.number, np.ndarray)


def _check_scalar(value):
    if type(value) is float:
        return value
    if isinstance(value, tuple | list):
        raise InputError(
            f"grad needs a scalar output; f returned a {type(value).__name__} of {len(value)}:"
            f" use jacobian"
        )
    if isinstance(value, bool) or not isinstance(value, _NUMBERS):
        raise InputError(
            f"grad needs a scalar output; f returned a {type(value).__name__}: return a float"
        )
    if shape_of(value) != ():
        raise InputError(
            f"grad needs a scalar output, got shape {shape_of(value)}; use jacobian or vjp"
        )
    return value


def value_and_grad(f, argnums=0):
    """Return a function giving (f(*args), gradient) for a scalar-valued f.

    The gradient has the shape of each differentiated argument; with a tuple `argnums` it is a
    tuple, one entry per argument.

    Example:
        >>> value_and_grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 2.0)
        (6.0, (2.0, 3.0))
    """
    resolve = positions(argnums)
    many = several_argnums(argnums)

    def value_and_grad_f(*args, **kwargs):
        value, grads = _value_and_grad(f, *resolve(len(args)), args, kwargs)
        return value, (grads if many else grads[0])

    return value_and_grad_f


def grad(f, argnums=0):
    """Return a function computing the gradient of scalar-valued f with respect to `argnums`.

    Example:
        >>> import diffkit as dk
        >>> neuron = lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b)))
        >>> dk.grad(neuron, argnums=(0, 1, 2))(1.0, 0.0, 0.0)
        (0.0, 0.25, 0.25)
    """
    resolve = positions(argnums)
    many = several_argnums(argnums)

    def grad_f(*args, **kwargs):
        grads = _value_and_grad(f, *resolve(len(args)), args, kwargs)[1]
        return grads if many else grads[0]

    return grad_f


def vjp(f, *primals):
    """Return (f(*primals), vjp_fn) where vjp_fn(cotangent) gives one cotangent per primal.

    For f returning a tuple (or list) of outputs, the cotangent is one too, an entry per output.

    Example:
        >>> out, pullback = vjp(lambda x: 3.0 * x, 2.0)
        >>> out, pullback(1.0)
        (6.0, (3.0,))
    """
    inputs = tuple(range(len(primals)))
    out, tape, level = _trace(f, primals, inputs, {})
    several = isinstance(out, tuple | list)
    outs = tuple(out) if several else (out,)

    def vjp_fn(cotangent):
        cotangents = cotangent if several else (cotangent,)
        if several and not (
                isinstance(cotangent, tuple | list) and len(cotangent) == len(out)):
            kind = type(out).__name__
            raise InputError(
                f"f returned a {kind} of {len(out)}: pass a {kind} of {len(out)} cotangents"
            )
        total = [None] * len(inputs)
        for o, ct in zip(outs, cotangents):
            if shape_of(ct) != shape_of(o):
                raise InputError(
                    f"the cotangent has shape {shape_of(ct)}, the output {shape_of(o)}"
                )
            for i, c in enumerate(_pull(o, tape, level, ct, len(inputs))):
                if c is not None:
                    total[i] = c if total[i] is None else total[i] + c
        return tuple(_as_gradient(ct, p) for ct, p in zip(total, primals))

    values = [as_output(_value(o, level)) for o in outs]
    return (rebuild(out, values) if several else values[0]), vjp_fn


def jacobian(f, argnums=0):
    """Return a function computing the Jacobian of f: shape out.shape + arg.shape.

    Reverse mode, one backward pass over the same tape per output entry. As in JAX, a tuple of
    argnums gives a tuple of blocks, one per argument, and f returning a tuple (or list) gives
    one over its outputs of those: `jacobian(f, (0, 1))(x, y)[i][j]` is d out_i / d arg_j.

    Example:
        >>> import numpy as np
        >>> jacobian(lambda x: x * x)(np.array([1.0, 2.0]))
        array([[2., 0.],
               [0., 4.]])
    """
    resolve = positions(argnums)
    many = several_argnums(argnums)

    def jacobian_f(*args, **kwargs):
        _, inputs, slots = resolve(len(args))
        out, tape, level = _trace(f, args, inputs, kwargs)
        blocks = []
        several = isinstance(out, tuple | list)
        for o in out if several else (out,):
            per_input = _reverse_rows(o, tape, level, [args[n] for n in inputs])
            blocks.append(tuple(per_input[s] for s in slots) if many else per_input[slots[0]])
        return rebuild(out, blocks) if several else blocks[0]

    return jacobian_f


def _reverse_rows(out, tape, level, primals):
    """The Jacobian of one output with respect to each primal (the tape's first entries)."""
    out_shape = shape_of(out)
    value = primal(_value(out, level))
    rows = [[] for _ in primals]
    for k in range(math.prod(out_shape)):
        seed = np.zeros(out_shape, dtype=np.result_type(value, float))
        seed.flat[k] = 1.0
        seed = float(seed) if out_shape == () else seed
        cts = _pull(out, tape, level, seed, len(primals))
        for row, ct, p in zip(rows, cts, primals):
            row.append(_as_gradient(ct, p))
    return [stack(row, out_shape, shape_of(p)) for row, p in zip(rows, primals)]
