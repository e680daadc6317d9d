"""Arguments and results of the transforms, shared by reverse and forward mode (and numeric
and compile): which inputs to differentiate (argnums), their check, and the shape of results."""

from __future__ import annotations

import numpy as np

from diffkit import ops
from diffkit.core import Box
from diffkit.errors import InputError


def check_input(x, position):
    """Return x as a differentiable float value, or raise InputError saying why it is not."""
    kind = type(x)
    if kind is float or isinstance(x, Box):
        return x
    if kind is int or isinstance(x, np.float64):
        return float(x)
    if isinstance(x, np.floating):  # float32 stays float32: a 0-d array, computed as such
        return np.asarray(x)
    if kind is bool or isinstance(x, (np.bool_, np.integer)):
        raise InputError(f"argument {position} is {kind.__name__}; pass a float to differentiate")
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "fc" and x.dtype != object:
            return x
        raise InputError(
            f"argument {position} is an array of dtype {x.dtype}; differentiable inputs must be"
            f" float arrays: pass x.astype(float)"
        )
    raise InputError(f"argument {position} is a {kind.__name__}; pass a float or a float array")


def normalize_argnums(argnums, count=None, distinct=False) -> tuple:
    """Return argnums as a tuple of argument positions, in the order given.

    `argnums` is an int or a non-empty tuple or list of ints (a bool is not an int here). With
    `count`, the number of arguments of the call, negative positions are resolved (-1: the last)
    and each is checked to be in range; with `distinct`, no position may be named twice.
    Anything else raises InputError with one line.

    Example:
        >>> normalize_argnums((0, -1), count=3)
        (0, 2)
    """
    nums = tuple(argnums) if isinstance(argnums, tuple | list) else (argnums,)
    if not nums:
        raise InputError(f"argnums must be an int or a non-empty tuple of ints, not {argnums!r}")
    for n in nums:
        if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer):
            raise InputError(f"argnums must be an int or a tuple of ints, not {argnums!r}")
    if count is None:
        return tuple(int(n) for n in nums)
    resolved = []
    for n in nums:
        if not -count <= n < count:
            noun = "argument" if count == 1 else "arguments"
            raise InputError(
                f"argnums {n} is out of range for a function called with {count} {noun}"
            )
        resolved.append(int(n) % count)
    if distinct and len(set(resolved)) != len(resolved):
        twice = next(n for n in resolved if resolved.count(n) > 1)
        raise InputError(f"argnums {argnums!r} names argument {twice} twice; name each once")
    return tuple(resolved)


def positions(argnums):
    """Check argnums now; return resolve(count) -> (positions, inputs, slots) for a call with
    count arguments: the positions of argnums, the distinct ones to trace (tape entries 0, 1, ...
    in that order; `inputs is positions` when none repeats), and the tape entry of each."""
    nums = normalize_argnums(argnums)
    seen = {}

    def resolve(count):
        found = seen.get(count)
        if found is None:
            positions = normalize_argnums(nums, count)
            inputs = tuple(dict.fromkeys(positions))
            if inputs == positions:
                inputs = positions
            found = positions, inputs, tuple(inputs.index(n) for n in positions)
            seen[count] = found
        return found

    return resolve


def several_argnums(argnums):
    """True when argnums asks for a tuple of results (a tuple or list of positions)."""
    return isinstance(argnums, tuple | list)


def rebuild(out, items):
    """items in the container f returned its outputs in: a list for a list, else a tuple."""
    return list(items) if isinstance(out, list) else tuple(items)


def as_output(value):
    """A 0-d NumPy result as a Python float (complex for complex); anything else as it is."""
    if type(value) is float or isinstance(value, Box) or np.ndim(value) != 0:
        return value
    return float(value) if not np.iscomplexobj(value) else complex(value)


def stack(parts, out_shape, in_shape):
    """Stack derivatives, one per entry of out_shape (each shaped in_shape, in C order), into
    an out_shape + in_shape array; boxes (a Jacobian inside another transform) are stacked
    with primitives, so that transform differentiates through it."""
    if out_shape == () and in_shape == ():
        return parts[0]
    if not any(isinstance(p, Box) for p in parts):
        return np.reshape(np.array(parts, dtype=float), out_shape + in_shape)
    flat = (len(parts), *in_shape)
    total = 0.0
    for k, p in enumerate(parts):
        total = total + ops.untake(p, index=k, shape=flat)
    return ops.reshape(total, shape=out_shape + in_shape)
