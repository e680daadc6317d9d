"""The Primitive (an operation with its derivative rules) and dispatch on the kind of argument:
floats, arrays and complex numbers go to NumPy, boxes to their transform, SymPy objects to SymPy."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from diffkit.errors import NotAnalyticError, TracedValueError

_levels = itertools.count(1)


def new_level() -> int:
    """Return a nesting level above every level handed out so far (one per transform call)."""
    return next(_levels)


@dataclass(frozen=True, eq=False, slots=True)
class Primitive:
    """An operation defined once: NumPy implementation, SymPy counterpart, VJP and JVP rules.

    `vjp[i](g, ans, *args, **params)` returns the cotangent of input i and `jvp[i](t, ans, *args,
    **params)` the output tangent contributed by input i; `None` marks an input that is not
    differentiable. `scalar`, when given, computes the same function on Python floats quickly.
    `grammar`, `kink` and `activation` say what the rest of diffkit needs to know of it: every
    list of operations elsewhere is derived from these.

    Example:
        >>> twice = Primitive("twice", lambda x: 2 * x, lambda x: 2 * x,
        ...                   vjp=[lambda g, ans, x: 2 * g], jvp=[lambda t, ans, x: 2 * t])
        >>> twice(1.5)
        3.0
    """

    name: str
    impl: Callable
    sympy_impl: Callable | None = None
    vjp: tuple = ()
    jvp: tuple = ()
    scalar: Callable | None = None
    analytic: bool = True
    elementwise: bool = True
    grammar: bool = False  # callable by name in `diffkit verify`'s text grammar
    kink: bool = False  # a switch: its derivative jumps where its argument is 0 (or at a tie)
    activation: bool = False  # one of the activations of the article's chains and studies

    def __post_init__(self):
        # rules are replaced whole, through set_rules, never edited in place
        object.__setattr__(self, "vjp", tuple(self.vjp))
        object.__setattr__(self, "jvp", tuple(self.jvp))

    @property
    def arity(self) -> int:
        """The number of array inputs (the rules' inputs; parameters are keywords)."""
        return len(self.vjp)

    @property
    def parameters(self) -> dict:
        """The keyword parameters of the operation and their defaults (leaky_relu: alpha), as
        its rules declare them."""
        rule = next((r for r in (*self.vjp, *self.jvp) if r is not None), None)
        if rule is None:
            return {}
        return {name: p.default for name, p in inspect.signature(rule).parameters.items()
                if p.default is not inspect.Parameter.empty}

    def __call__(self, *args, **params):
        if len(args) == 1:
            # Unary calls dominate scalar graphs: decide float or box without the general scan.
            x = args[0]
            if not params:
                if type(x) is float and self.scalar is not None:
                    return self.scalar(x)
                if isinstance(x, Box):
                    return x.apply(self, args, params)
            if type(x) is np.ndarray and x.dtype.kind in "fiub":
                return self.impl(x, **params)
        elif len(args) == 2:
            x, y = args
            if (type(x) is np.ndarray and type(y) is np.ndarray and x.dtype.kind in "fiub"
                    and y.dtype.kind in "fiub"):
                return self.impl(x, y, **params)  # real arrays: NumPy, nothing to decide
        return self._dispatch(args, params)

    def _dispatch(self, args, params):
        """The general case: the highest-level box applies the primitive; else floats go to
        the scalar path, SymPy values to the counterpart, the rest to NumPy."""
        top = None
        plain = True
        symbolic = False
        for a in args:
            kind = type(a)
            if kind is float or kind is int or kind is bool:
                continue
            plain = False
            if kind is np.ndarray:
                symbolic = symbolic or a.dtype.kind == "O"
            elif isinstance(a, Box):
                if top is None or a.level > top.level:
                    top = a
            elif isinstance(a, sympy.Basic):
                symbolic = True
        if top is not None:
            return top.apply(self, args, params)
        if plain and self.scalar is not None:
            return self.scalar(*args, **params)
        if symbolic:
            return self._evaluate_symbolic(args, params)
        if not self.analytic and any(_is_complex(a) for a in args):
            raise NotAnalyticError(
                f"{self.name} is not analytic: the complex step does not apply to it"
            )
        return self.impl(*args, **params)

    def _evaluate_symbolic(self, args, params):
        if self.sympy_impl is None:
            raise TypeError(f"{self.name} has no SymPy counterpart")
        if self.elementwise and any(isinstance(a, np.ndarray) for a in args):
            ufunc = np.frompyfunc(lambda *xs: self.sympy_impl(*xs, **params), len(args), 1)
            return ufunc(*args)
        out = self.sympy_impl(*args, **params)
        if isinstance(out, np.ndarray) and out.ndim == 0:
            return out.item()
        return out


def set_rules(prim: Primitive, mode: str, rules) -> tuple:
    """Replace prim's `mode` ("vjp" or "jvp") rules by `rules` (one per input, None: not
    differentiable) and return the old ones. The only way rules change: what depends on them
    (the tape's record of which inputs a rule reads) notices a new tuple by its identity."""
    if mode not in ("vjp", "jvp"):
        raise ValueError(f"mode must be 'vjp' or 'jvp', not {mode!r}")
    old = getattr(prim, mode)
    object.__setattr__(prim, mode, tuple(rules))
    return old


def on_numpy_scalars(rule, g, ans, vals, params):
    """Apply a rule with its Python floats as NumPy scalars: where Python raises on 1/0.0 or
    overflow, NumPy gives the inf or nan that diffkit reports."""
    as_np = [np.float64(v) if type(v) is float else v for v in (g, ans, *vals)]
    with np.errstate(all="ignore"):
        return rule(*as_np, **(params or {}))


def _is_complex(x) -> bool:
    kind = type(x)
    if kind is complex or kind is np.ndarray:
        return kind is complex or x.dtype.kind == "c"
    return isinstance(x, np.complexfloating)


def is_symbolic(x) -> bool:
    """True for a SymPy expression or an object array (of SymPy expressions)."""
    if isinstance(x, np.ndarray):
        return x.dtype == object
    return isinstance(x, sympy.Basic)


class Box:
    """A value under a transform (reverse tracer, forward dual, ...) at one nesting level:
    what Primitive dispatches to `apply`. Its arithmetic and NumPy's functions are in
    boxes.ArrayBox, which every transform's value subclasses."""

    __slots__ = ()
    transform = "a diffkit transform"  # named in errors: which transform traced this value

    def apply(self, prim, args, params):
        raise NotImplementedError

    # float(), int(), complex() and indexing need a number: under a transform there is none.
    def __float__(self):
        raise TracedValueError(self._no_number("float() or a math-module function", _USE_DK))

    def __int__(self):
        raise TracedValueError(self._no_number("int()", _USE_DK))

    def __complex__(self):
        raise TracedValueError(self._no_number("complex() or a cmath-module function", _USE_DK))

    def __index__(self):
        raise TracedValueError(self._no_number(
            "an index, a shape or range()", "compute it from constants, not traced values"
        ))

    def _no_number(self, what, instead):
        return f"{what} cannot see through a value traced by {self.transform}: {instead}"

    @property
    def shape(self):
        return np.shape(primal(self))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    @property
    def dtype(self):
        return np.result_type(primal(self))

    def __len__(self):
        return self.shape[0]

    # Comparisons look at values only: their result is a constant, never differentiated.
    def __lt__(self, other):
        return primal(self) < primal(other)

    def __le__(self, other):
        return primal(self) <= primal(other)

    def __gt__(self, other):
        return primal(self) > primal(other)

    def __ge__(self, other):
        return primal(self) >= primal(other)

    def __eq__(self, other):
        return primal(self) == primal(other)

    def __ne__(self, other):
        return primal(self) != primal(other)

    __hash__ = object.__hash__

    def __bool__(self):
        return bool(primal(self))


def primal(x):
    """Return x with every box removed: the plain number, array or SymPy value underneath."""
    while isinstance(x, Box):
        x = x.value
    return x


def shape_of(x) -> tuple:
    """Return the shape of x, looking through boxes (a float has shape ())."""
    while isinstance(x, Box):
        x = x.value
    kind = type(x)
    if kind is np.ndarray:
        return x.shape
    return () if kind is float else np.shape(x)


_USE_DK = "use dk.exp, dk.log, dk.sqrt, ... (not math.*), or take the number outside the transform"
