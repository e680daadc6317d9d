"""diffkit.compile: trace a function of floats once into straight-line Python for its value and
gradient (code written by ops.py's VJP rules); guards and an engine fallback keep it exact."""

from __future__ import annotations

import builtins
import inspect
import keyword
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from diffkit import ops
from diffkit.arguments import normalize_argnums
from diffkit.boxes import ArrayBox
from diffkit.core import Box, Primitive, new_level
from diffkit.errors import InputError
from diffkit.reverse import value_and_grad as engine_value_and_grad


def _comparison(name, fn):
    return Primitive(name, fn, fn, vjp=[None, None], jvp=[None, None], scalar=fn, analytic=False)


_COMPARE = {
    "<": _comparison("less", operator.lt), "<=": _comparison("less_equal", operator.le),
    ">": _comparison("greater", operator.gt), ">=": _comparison("greater_equal", operator.ge),
    "==": _comparison("equal", operator.eq), "!=": _comparison("not_equal", operator.ne),
}
_INFIX = {ops.add: "+", ops.subtract: "-", ops.multiply: "*", ops.divide: "/", ops.power: "**"}
_INFIX.update({prim: symbol for symbol, prim in _COMPARE.items()})
_RESHAPES = (ops.reshape, ops.transpose, ops.broadcast_to)  # the identity when the shape is ()
_FUNCTIONS = ("value", "grad", "value_and_grad")
_GENERATED = re.compile(r"[vgca]\d+")  # names the generated code makes for itself


class _GuardFailed(Exception):
    """A value-dependent decision taken at trace time does not hold for this call."""


class _Seen(float):
    """What `primal()` returns for a symbol: its traced value, whose comparisons stay symbolic
    (power's rule tests `primal(x) == 0`) and whose truth value is guarded."""

    __slots__ = ("symbol",)

    def __new__(cls, number, symbol):
        seen = float.__new__(cls, number)
        seen.symbol = symbol
        return seen

    __hash__ = float.__hash__
    __lt__ = lambda self, other: self.symbol < other
    __le__ = lambda self, other: self.symbol <= other
    __gt__ = lambda self, other: self.symbol > other
    __ge__ = lambda self, other: self.symbol >= other
    __eq__ = lambda self, other: self.symbol == other
    __ne__ = lambda self, other: self.symbol != other
    __bool__ = lambda self: bool(self.symbol)


class _Symbol(ArrayBox):
    """A name in the generated code; `concrete` is its value at the example arguments, `active`
    says whether it depends on a differentiated input, `boolean` that it holds a comparison."""

    __slots__ = ("trace", "name", "concrete", "level", "active", "boolean")

    def __init__(self, trace, name, concrete, active, boolean=False):
        self.trace, self.name, self.concrete = trace, name, concrete
        self.level, self.active, self.boolean = trace.level, active, boolean

    def apply(self, prim, args, params):
        return self.trace.emit(prim, args, params)

    @property
    def value(self):
        return _Seen(self.concrete, self)

    # Comparisons become code (`v5 = x > 0.0`): rules feed them to where(), and `if` guards them.
    __lt__ = lambda self, other: self.trace.emit(_COMPARE["<"], (self, other), {})
    __le__ = lambda self, other: self.trace.emit(_COMPARE["<="], (self, other), {})
    __gt__ = lambda self, other: self.trace.emit(_COMPARE[">"], (self, other), {})
    __ge__ = lambda self, other: self.trace.emit(_COMPARE[">="], (self, other), {})
    __eq__ = lambda self, other: self.trace.emit(_COMPARE["=="], (self, other), {})
    __ne__ = lambda self, other: self.trace.emit(_COMPARE["!="], (self, other), {})
    __hash__ = object.__hash__

    def __bool__(self):
        return self.trace.guard(self)

    def __repr__(self):
        return f"_Symbol({self.name}={self.concrete!r})"


def _free(name, taken) -> bool:
    """True when `name` can be bound in the generated code without shadowing anything."""
    return (name.isidentifier() and not keyword.iskeyword(name) and not hasattr(builtins, name)
            and not name.startswith("_") and not _GENERATED.fullmatch(name) and name not in taken)


def _plain(a):
    """a as the code sees it: a primal's symbol; NumPy scalars and 0-d arrays as floats (rules
    turn the seed 1.0 into a 0-d array on the way through reshape)."""
    if type(a) is _Seen:
        return a.symbol
    if isinstance(a, (np.floating, np.integer)) or (
            type(a) is np.ndarray and a.shape == () and a.dtype.kind in "fiu"):
        return float(a)
    return a


def _exactly(a, number) -> bool:
    """a is the constant `number`, zeros told apart by sign (x + 0.0 is not x at x = -0.0)."""
    return (type(a) in (float, int) and a == number
            and math.copysign(1, a) == math.copysign(1, number))


def _fold(prim, args):
    """The result when it needs no code (x * 1.0, x - 0.0, x ** 1, a constant condition); only
    folds that give the same float for every x, nan and -0.0 included."""
    if prim is ops.where and type(args[0]) is not _Symbol:
        return args[1] if args[0] else args[2]
    if len(args) != 2 or any(type(a) is _Symbol and a.boolean for a in args):
        return None
    x, y = args
    if prim is ops.multiply and (_exactly(x, 1.0) or _exactly(x, -1.0)):
        return y if x > 0 else -y
    if prim in (ops.multiply, ops.divide, ops.power) and _exactly(y, 1.0):
        return x
    if prim in (ops.add, ops.subtract) and _exactly(y, -0.0 if prim is ops.add else 0.0):
        return x
    return None


def _inline_power(x, y) -> bool:
    """Python's ** is NumPy's power (or raises, and we fall back) unless it would go complex."""
    if type(y) in (float, int) and math.isfinite(y) and float(y).is_integer():
        return True
    return type(x) in (float, int) and x >= 0


class _Trace:
    """The code being written: its lines, the memo that shares identical subexpressions, the
    forward nodes the reverse sweep walks, the guards taken, and what its names are bound to."""

    def __init__(self, taken):
        self.level = new_level()
        self.lines = []  # (target or None for a guard, code, names it reads, comment)
        self.memo = {}
        self.nodes = []  # (symbol, prim, args, params) of the forward pass, in order
        self.namespace, self.bound = {"_GuardFailed": _GuardFailed}, {}
        self.taken, self.guards = taken, []
        self.prefix, self.context, self.count = "v", "", 0

    def emit(self, prim, args, params):
        args = tuple(_plain(a) for a in args)
        if any(isinstance(a, Box) and not (type(a) is _Symbol and a.trace is self) for a in args):
            raise InputError("compile cannot see values of an enclosing transform or of another"
                             " compile; pass them to f as arguments")
        if prim is ops.max or (prim in _RESHAPES and params.get("shape", ()) == ()):
            return args[0]  # the identity on a float (max's rule splits ties in arrays)
        folded = _fold(prim, args)
        if folded is not None:
            return folded
        if prim.scalar is None and not prim.elementwise:
            raise InputError(f"compile takes functions of floats; {prim.name} needs arrays:"
                             " use diffkit.value_and_grad")
        key = (prim, tuple(a.name if type(a) is _Symbol else repr(a) for a in args),
               repr(sorted(params.items())))
        if key not in self.memo:
            self.memo[key] = self._record(prim, args, params)
        return self.memo[key]

    def _record(self, prim, args, params):
        vals = [a.concrete if type(a) is _Symbol else a for a in args]
        if prim is ops.where:
            concrete = vals[1] if vals[0] else vals[2]
        else:
            with np.errstate(all="ignore"):
                concrete = prim(*vals, **params)
        if np.ndim(concrete) != 0:
            raise InputError(f"compile takes functions of floats; {prim.name} made an array"
                             " here: use diffkit.value_and_grad")
        active = any(type(a) is _Symbol and a.active and k < len(prim.vjp)
                     and prim.vjp[k] is not None for k, a in enumerate(args))
        symbol = self.new(concrete, active, prim in _COMPARE.values())
        deps = tuple(a.name for a in args if type(a) is _Symbol)
        comment = prim.name + (f", {self.context}" if self.context else "")
        self.lines.append((symbol.name, self._code(prim, args, params), deps, comment))
        if active and self.prefix == "v":
            self.nodes.append((symbol, prim, args, params))
        return symbol

    def new(self, concrete, active, boolean=False, name=None):
        if name is None:
            name, self.count = f"{self.prefix}{self.count}", self.count + 1
        return _Symbol(self, name, concrete, active, boolean)

    def guard(self, symbol):
        outcome = bool(symbol.concrete)
        if ("guard", symbol.name) not in self.memo:
            self.memo["guard", symbol.name] = outcome
            test = f"not {symbol.name}" if outcome else symbol.name
            self.lines.append((None, f"if {test}: raise _GuardFailed", (symbol.name,),
                               f"guard: {symbol.name} was {outcome} when traced"))
            self.guards.append(f"{symbol.name} is {outcome}")
        return outcome

    def _code(self, prim, args, params):
        terms = [self.operand(a) for a in args]
        if prim is ops.negative:
            return f"-{terms[0]}"
        if prim is ops.where:
            return f"{terms[1]} if {terms[0]} else {terms[2]}"
        if prim in _INFIX and not params and (prim is not ops.power or _inline_power(*args)):
            return f"{terms[0]} {_INFIX[prim]} {terms[1]}"
        call = ", ".join(terms + [f"{k}={self.operand(v)}" for k, v in params.items()])
        if prim.scalar is not None:  # floats in, floats out, inf and nan instead of exceptions
            return f"{self.bind(prim, prim.scalar)}({call})"
        return f"float({self.bind(prim, prim.impl)}({call}))"

    def operand(self, a):
        """The code for an operand: a name, a literal, or a constant bound in the namespace."""
        if type(a) is _Symbol:
            return a.name
        if a is None or type(a) is bool:
            return repr(a)
        if type(a) in (int, float) and math.isfinite(a):
            text = repr(float(a))
            return f"({text})" if text.startswith("-") else text
        name = f"c{len(self.namespace)}"
        self.namespace[name] = a
        return name

    def bind(self, prim, fn):
        if prim not in self.bound:
            ident, taken = re.sub(r"\W", "_", prim.name), self.taken | self.namespace.keys()
            name = next((n for n in (ident, ident + "_") if _free(n, taken)), None)
            self.bound[prim] = name or f"_p{len(self.bound)}"
            self.namespace[self.bound[prim]] = fn
        return self.bound[prim]


def _backward(trace, out, inputs):
    """The reverse sweep as code: each forward node's VJP rules run on symbols, newest first,
    so the gradient code is written by ops.py's rules. Returns a cotangent per input."""
    cts = {out.name: 1.0} if type(out) is _Symbol and out.active else {}
    trace.prefix = "g"
    for symbol, prim, args, params in reversed(trace.nodes):
        g = cts.pop(symbol.name, None)
        if g is None:
            continue
        for k, a in enumerate(args):
            if type(a) is _Symbol and a.active and prim.vjp[k] is not None:
                trace.context = f"vjp of {prim.name}"
                ct = prim.vjp[k](g, symbol, *args, **params)
                trace.context = f"cotangent of {a.name}"
                old = cts.get(a.name)
                cts[a.name] = ct if old is None else old + ct
    return [_plain(cts.get(x.name, 0.0)) for x in inputs]


def _as_float(x, position):
    if isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        return float(x)
    raise InputError(f"argument {position} is a {type(x).__name__}; compile takes Python floats"
                     " (use diffkit.value_and_grad for arrays)")


def _parameter_names(f, count, taken):
    """f's own parameter names where they are safe to use in the generated code, else a0, a1..."""
    try:
        found = [p.name for p in inspect.signature(f).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        found = []
    names = []
    for i in range(count):
        wanted = found[i] if i < len(found) else ""
        names.append(wanted if _free(wanted, taken | set(names)) else f"a{i}")
    return names


def _tuple(items):
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _function(name, params, lines, returned):
    """The source of one generated function: argument checks, the lines `returned` needs and
    every guard, and the fallback to the engine."""
    needed, live = set(re.findall(r"\w+", returned)), []
    for target, code, deps, comment in reversed(lines):
        if target is None or target in needed:
            needed.update(deps)
            live.append(f"{code}  # {comment}" if target is None else
                        f"{target} = {code}  # {comment}")
    checks = " or ".join(f"type({p}) is not float" for p in params)
    body = [f"def {name}(*args):", f"    if len(args) != {len(params)}:",
            f"        return _slow_{name}(args)", f"    {_tuple(params)[1:-1]} = args",
            f"    if {checks}:", f"        return _slow_{name}(args)", "    try:"]
    body += [f"        {line}" for line in reversed(live)] or ["        pass"]
    body += ["    except (ArithmeticError, _GuardFailed):  # 1/0.0, overflow, a guard",
             f"        return _engine_{name}(args)", f"    return {returned}"]
    return "\n".join(body)


def _bind_fallbacks(namespace, f, argnums, count):
    """Each generated function's ways out: the engine (a guard failed, Python raised, or an
    argument is a box of an enclosing transform) and argument checks (ints, wrong count)."""
    engine = engine_value_and_grad(f, argnums)
    for name, pick in zip(_FUNCTIONS, (0, 1, None)):
        fallback = lambda args, pick=pick: engine(*args) if pick is None else engine(*args)[pick]

        def slow(args, fast=namespace[name], fallback=fallback):
            if len(args) != count:
                raise InputError(f"this compiled function takes {count} argument(s), got"
                                 f" {len(args)}")
            if any(isinstance(a, Box) for a in args):
                return fallback(args)
            return fast(*(_as_float(a, i) for i, a in enumerate(args)))

        namespace[f"_engine_{name}"], namespace[f"_slow_{name}"] = fallback, slow


@dataclass(frozen=True)
class Compiled:
    """A function compiled by `diffkit.compile`: `value_and_grad`, `grad` and `value` (also
    `__call__`) take the same floats as f; `source` is the Python that runs; `guards` are the
    decisions taken at trace time (a call for which one fails runs in the engine instead)."""

    value: Callable = field(repr=False)
    value_and_grad: Callable = field(repr=False)
    grad: Callable = field(repr=False)
    source: str = field(repr=False)
    guards: tuple = ()

    def __call__(self, *args):
        return self.value(*args)


def compile(f, *example_args, argnums=0) -> Compiled:
    """Trace f once at the example floats and compile its value and gradient to Python.

    Same conventions as `diffkit.value_and_grad(f, argnums)`, and every call returns what it
    would: value-dependent steps are guarded or made conditional expressions.

    Example:
        >>> import diffkit as dk
        >>> neuron = dk.compile(lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b))), 1.0, 0.0, 0.0,
        ...                     argnums=(0, 1, 2))
        >>> neuron.value_and_grad(1.0, 0.0, 0.0)
        (0.5, (0.0, 0.25, 0.25))
    """
    points = [_as_float(x, i) for i, x in enumerate(example_args)]
    nums = normalize_argnums(argnums, len(points))
    reserved = {"args", *_FUNCTIONS}
    params = _parameter_names(f, len(points), reserved)
    trace = _Trace(reserved | set(params))
    wanted = set(nums)
    inputs = [trace.new(x, i in wanted, name=p) for i, (p, x) in enumerate(zip(params, points))]
    out = _plain(f(*inputs))
    if not (type(out) is _Symbol and out.trace is trace or type(out) in (float, int)):
        raise InputError(f"compile needs f to return a float, got {type(out).__name__}")
    value, *grads = [f"float({x.name})" if type(x) is _Symbol and x.boolean else trace.operand(x)
                     for x in [out, *_backward(trace, out, [inputs[n] for n in nums])]]
    gradient = _tuple(grads) if isinstance(argnums, tuple | list) else grads[0]
    source = "\n\n\n".join(_function(name, params, trace.lines, returned) for name, returned in
                           zip(_FUNCTIONS, (value, gradient, f"{value}, {gradient}")))
    namespace = trace.namespace
    exec(builtins.compile(source, "<diffkit.compile>", "exec"), namespace)  # our own code
    _bind_fallbacks(namespace, f, argnums, len(points))
    return Compiled(namespace["value"], namespace["value_and_grad"], namespace["grad"],
                    source + "\n", tuple(trace.guards))
