"""The high-precision reference: f traced into a graph of SymPy nodes, each node's local
derivatives taken from SymPy, accumulated by the chain rule in mpmath at two precisions.

Linear in graph size for the gradient (one reverse sweep), n sweeps for the Hessian
(forward-over-reverse). Digits are proven by agreement of two working precisions; switches
(abs, relu, max, where, ...) are decided exactly; undefined formulas (0 * log 0) become limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy
from sympy.core.parameters import evaluate as _unevaluated_flag

from diffkit.boxes import ArrayBox
from diffkit.core import Box, new_level, primal
from diffkit.errors import InputError, first_line

DIGITS = 30  # significant digits the reference must prove, or else say how many it has
LADDER = ((50, 70), (100, 140), (250, 330))  # working precisions (decimal digits), in turn
_MAX_LABELS = 3
_BRANCHES = ("f branches on a traced value (if x > 0: ...), which no graph can follow; "
             "write the branch with dk.where")


class Unavailable(Exception):
    """The reference cannot be built for this function (the message says why, in one line)."""


# ---- tracing: every primitive application becomes a binding t := sympy_impl(inputs) ----


class _Let(ArrayBox):
    """A traced value: a SymPy symbol (or object array of them) bound in the graph's list."""

    __slots__ = ("value", "level", "bindings")

    def __init__(self, value, level, bindings):
        self.value = value
        self.level = level
        self.bindings = bindings

    def apply(self, prim, args, params):
        if prim.sympy_impl is None:
            raise Unavailable(f"{prim.name} has no SymPy counterpart (sympy_impl)")
        # Each input position gets symbols of its own, so that SymPy cannot simplify across
        # them (x / x stays a division): the graph is the program, as on the tape.
        renamed = {}
        vals = [_renamed(a.value, renamed) if type(a) is _Let and a.level == self.level else a
                for a in args]
        out = prim(*vals, **params)
        if isinstance(out, np.ndarray):
            out = np.frompyfunc(lambda e: self._bind(e, prim.name, renamed), 1, 1)(out)
        else:
            out = self._bind(out, prim.name, renamed)
        return _Let(out, self.level, self.bindings)

    def _bind(self, expr, name, renamed):
        if not isinstance(expr, sympy.Basic) or expr.is_number:
            return expr
        if expr.is_Symbol:  # an input passed through (reshape, take, ...)
            return renamed.get(expr, expr)
        symbol = sympy.Dummy()
        self.bindings.append((symbol, expr, name, renamed))
        return symbol

    def __bool__(self):
        raise Unavailable(_BRANCHES)

    def __eq__(self, other):
        return _relation(sympy.Eq, self, other)

    def __ne__(self, other):
        return _relation(sympy.Ne, self, other)

    __hash__ = Box.__hash__


def _unevaluated():
    return _unevaluated_flag(False)


def _renamed(value, renamed):
    """value with every symbol replaced by a fresh one; renamed maps fresh -> original."""
    def fresh(x):
        if isinstance(x, sympy.Symbol):
            new = sympy.Dummy()
            renamed[new] = x
            return new
        return x

    if isinstance(value, np.ndarray):
        return np.frompyfunc(fresh, 1, 1)(value)
    return fresh(value)


def _relation(rel, a, b):
    a, b = primal(a), primal(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.frompyfunc(rel, 2, 1)(a, b)
    return rel(a, b)


# ---- the graph: nodes in topological order, the inputs first ----

_INPUT, _CONST, _ADD, _MUL, _FN, _PIECE, _ABS, _MAX, _MIN, _STEP = range(10)
_SWITCHES = (_PIECE, _ABS, _MAX, _MIN, _STEP)


@dataclass(frozen=True, slots=True)
class _Node:
    kind: int
    args: tuple = ()
    data: object = None
    label: str = ""


class _Local:
    """One SymPy node type with constants in place: its value, gradient and Hessian as mpmath
    functions of its variable arguments, derived by sympy.diff."""

    def __init__(self, canonical, dummies):
        self.canonical = canonical
        self.dummies = dummies
        self.value = sympy.lambdify(dummies, canonical, modules="mpmath")
        self.grads = [sympy.lambdify(dummies, sympy.diff(canonical, d), modules="mpmath")
                      for d in dummies]
        self._hessian = None
        self.explosive = canonical.has(sympy.exp, sympy.sinh, sympy.cosh) or any(
            isinstance(e, sympy.Pow) and not e.exp.is_number for e in sympy.preorder_traversal(
                canonical))

    @property
    def hessian(self):
        if self._hessian is None:
            self._hessian = [[sympy.lambdify(self.dummies, sympy.diff(self.canonical, a, b),
                                             modules="mpmath") for b in self.dummies]
                             for a in self.dummies]
        return self._hessian


_locals = {}  # canonical SymPy expression -> _Local (SymPy's derivatives depend on nothing else)
_DUMMIES = [sympy.Dummy(f"a{k}", real=True) for k in range(8)]


def _local(func, args):
    """The _Local of func(*args) where args are node ids (variables) or SymPy constants."""
    dummies = []
    cargs = []
    for a in args:
        if isinstance(a, int):
            d = _DUMMIES[len(dummies)] if len(dummies) < len(_DUMMIES) else sympy.Dummy(real=True)
            dummies.append(d)
            cargs.append(d)
        else:
            cargs.append(a)
    canonical = func(*cargs, evaluate=False) if func is sympy.Pow else func(*cargs)
    key = (canonical, tuple(dummies))
    local = _locals.get(key)
    if local is None:
        local = _locals[key] = _Local(canonical, tuple(dummies))
    return local


@dataclass(frozen=True)
class Graph:
    """A traced function: `nodes` in topological order (the first len(names) are the flat
    inputs), `output` the node of f's value."""

    names: tuple
    nodes: tuple
    output: int
    constants: tuple  # SymPy numbers, indexed by the CONST/ADD/MUL nodes' data


def trace(f, args, names) -> Graph:
    """Trace f at args into a Graph; raise Unavailable (one line) when it cannot be traced.

    Example:
        >>> import diffkit as dk
        >>> g = trace(lambda x, y: dk.sin(x) * y, (1.0, 2.0), ("x", "y"))
        >>> len(g.names), len(g.nodes) > 2
        (2, True)
    """
    from diffkit.symbolic import flat_names

    shapes = [np.shape(a) for a in args]
    flat = tuple(flat_names(names, shapes))
    symbols = [sympy.Dummy(n, real=True) for n in flat]
    level = new_level()
    bindings = []
    inputs, k = [], 0
    for shape in shapes:
        size = math.prod(shape)
        block = symbols[k:k + size]
        value = block[0] if shape == () else np.array(block, dtype=object).reshape(shape)
        inputs.append(_Let(value, level, bindings))
        k += size
    try:
        with _unevaluated():  # SymPy's automatic simplification costs ~1 ms a node: not needed
            out = f(*inputs)
    except Unavailable:
        raise
    except (TypeError, ValueError, AttributeError, NotImplementedError) as error:
        first = first_line(error, type(error).__name__)
        if "truth value of Relational" in first:
            raise Unavailable(_BRANCHES) from None
        raise Unavailable(f"f cannot be traced into SymPy ({first})") from None
    if isinstance(out, tuple):
        raise InputError(f"f returns a tuple of {len(out)}; a scalar output is needed")
    out = primal(out)
    if isinstance(out, np.ndarray):
        if out.size != 1:
            raise InputError(f"f returns shape {out.shape}; a scalar output is needed")
        out = out.reshape(-1)[0]
    if not isinstance(out, sympy.Basic):
        out = sympy.sympify(float(out))
    return _Compiler(symbols, bindings).graph(flat, out)


class _Compiler:
    """Turns bindings of SymPy expressions into _Nodes, one per SymPy operation."""

    def __init__(self, symbols, bindings):
        self.nodes = [_Node(_INPUT, data=k) for k in range(len(symbols))]
        self.ids = {s: k for k, s in enumerate(symbols)}
        self.bindings = bindings
        self.constants = {}

    def constant(self, c):
        """The index of SymPy number c in the graph's constant table."""
        return self.constants.setdefault(c, len(self.constants))

    def graph(self, names, out):
        for symbol, expr, name, renamed in self.bindings:
            self.ids[symbol] = self.add(expr, name, renamed)
        output = self.add(out, "the output", {})
        return Graph(names, tuple(self.nodes), output, tuple(self.constants))

    def add(self, expr, label, renamed):
        """Append the nodes of expr (post-order, iteratively) and return its node id; the
        symbols of `renamed` stand for the nodes of the symbols they rename."""
        memo = {new: self.ids[old] for new, old in renamed.items()}
        stack = [(expr, False)]
        while stack:
            e, ready = stack.pop()
            if e in memo or e in self.ids:
                continue
            children = self._children(e)
            if not ready and any(c not in memo and c not in self.ids for c in children):
                stack.append((e, True))
                stack.extend((c, False) for c in children)
                continue
            memo[e] = self._node(e, memo, label)
        return self.ids[expr] if expr in self.ids else memo[expr]

    @staticmethod
    def _children(e):
        if e.is_Symbol or e.is_number:
            return []
        if isinstance(e, sympy.Piecewise):
            out = []
            for value, cond in e.args:
                out.append(value)
                out.extend(_relational_sides(cond))
            return out
        return [a for a in e.args if not a.is_number]

    def _node(self, e, memo, label):
        ref = lambda a: self.ids[a] if a in self.ids else memo[a]  # noqa: E731
        if e.is_number:
            return self._append(_Node(_CONST, data=self.constant(e)))
        if e.is_Symbol:
            raise Unavailable(f"f uses {e}, which is not one of its inputs")
        if isinstance(e, (sympy.Add, sympy.Mul)):
            const = sympy.Add(*[a for a in e.args if a.is_number]) if isinstance(
                e, sympy.Add) else sympy.Mul(*[a for a in e.args if a.is_number])
            kind = _ADD if isinstance(e, sympy.Add) else _MUL
            return self._append(_Node(kind, tuple(ref(a) for a in e.args if not a.is_number),
                                      self.constant(const)))
        if isinstance(e, sympy.Piecewise):
            branches, conds = [], []
            for value, cond in e.args:
                branches.append(ref(value) if not value.is_number else self._append(
                    _Node(_CONST, data=self.constant(value))))
                conds.append(_condition(cond, ref))
            return self._append(_Node(_PIECE, tuple(branches), tuple(conds), label))
        if isinstance(e, sympy.Abs):
            return self._append(_Node(_ABS, (ref(e.args[0]),), None, label))
        if isinstance(e, (sympy.Max, sympy.Min)):
            args = tuple(ref(a) if not a.is_number else self._append(
                _Node(_CONST, data=self.constant(a))) for a in e.args)
            return self._append(_Node(_MAX if isinstance(e, sympy.Max) else _MIN, args, None,
                                      label))
        if isinstance(e, (sympy.sign, sympy.Heaviside)):
            at_zero = sympy.Integer(0) if isinstance(e, sympy.sign) else (
                e.args[1] if len(e.args) > 1 else sympy.Rational(1, 2))
            return self._append(_Node(_STEP, (ref(e.args[0]),), (type(e), self.constant(at_zero)),
                                      label))
        args = [a if a.is_number else ref(a) for a in e.args]
        return self._append(_Node(_FN, tuple(a for a in args if isinstance(a, int)),
                                  _local(e.func, args)))

    def _append(self, node):
        self.nodes.append(node)
        return len(self.nodes) - 1


_RELATIONS = {sympy.StrictGreaterThan: lambda s: s > 0, sympy.GreaterThan: lambda s: s >= 0,
              sympy.StrictLessThan: lambda s: s < 0, sympy.LessThan: lambda s: s <= 0,
              sympy.Equality: lambda s: s == 0, sympy.Unequality: lambda s: s != 0}


def _relational_sides(cond):
    """The expressions lhs - rhs of every relation in a condition (their sign decides it)."""
    out, stack = [], [cond]
    while stack:
        c = stack.pop()
        if isinstance(c, sympy.core.relational.Relational):
            side = c.lhs - c.rhs
            if not side.is_number:
                out.append(side)
        elif isinstance(c, (sympy.And, sympy.Or, sympy.Not)):
            stack.extend(c.args)
    return out


def _condition(cond, ref):
    """A condition as a tree: ('rel', test, node or constant) | ('and'|'or'|'not', parts)
    | ('const', bool)."""
    if cond in (sympy.true, True):
        return ("const", True)
    if cond in (sympy.false, False):
        return ("const", False)
    if isinstance(cond, sympy.core.relational.Relational):
        side = cond.lhs - cond.rhs
        test = _RELATIONS.get(type(cond))
        if test is None:
            raise Unavailable(f"the condition {cond} is not a comparison diffkit can decide")
        return ("rel", test, side if side.is_number else ref(side))
    if isinstance(cond, (sympy.And, sympy.Or, sympy.Not)):
        kind = {sympy.And: "and", sympy.Or: "or", sympy.Not: "not"}[type(cond)]
        return (kind, tuple(_condition(c, ref) for c in cond.args))
    raise Unavailable(f"the condition {cond} is not a comparison diffkit can decide")


def _switch_sides(node):
    """The node ids whose sign decides a switch node (max/min: its arguments, compared)."""
    if node.kind in (_ABS, _STEP):
        return node.args
    if node.kind in (_MAX, _MIN):
        return ()
    sides, stack = [], list(node.data)
    while stack:
        c = stack.pop()
        if c[0] == "rel":
            if isinstance(c[2], int):
                sides.append(c[2])
        elif c[0] != "const":
            stack.extend(c[1])
    return tuple(sides)


# ---- evaluation in mpmath ----

_NAN = mpmath.mpf("nan")


def _real(x):
    """x as a real mpf; complex with a nonzero imaginary part (log of a negative) is nan."""
    if isinstance(x, mpmath.mpc):
        return x.real if x.imag == 0 else _NAN
    if isinstance(x, mpmath.mpf):
        return x
    return mpmath.mpf(x) if not isinstance(x, complex) else (
        mpmath.mpf(x.real) if x.imag == 0 else _NAN)


_CLAMP = 4096  # bits: an argument of exp beyond 2**4096 ~ 10**1233 is clamped there


def _clamped(local, values):
    """The arguments of an exponentially growing node (exp, sinh, cosh, a power with a variable
    exponent) clamped to +-2**_CLAMP: exp of a value with a million-digit exponent takes
    minutes, while anything past exp(2**4096) is equally beyond every float (and its sign and
    its being huge are all the derivatives downstream can use)."""
    if not local.explosive:
        return values
    limit = mpmath.mpf(2) ** _CLAMP
    return [v if not mpmath.isfinite(v) or v == 0 or mpmath.mag(v) <= _CLAMP
            else (limit if v > 0 else -limit) for v in values]


def _call(fn, values):
    try:
        return _real(fn(*values))
    except (ZeroDivisionError, ValueError, OverflowError, TypeError):
        return _NAN


def _constant(c):
    if c.is_Integer:
        return mpmath.mpf(int(c))
    if c.is_Rational:
        return mpmath.mpf(int(c.p)) / int(c.q)
    if c.is_Float:
        return mpmath.mpf(c._mpf_)
    value = sympy.N(c, mpmath.mp.dps + 5)
    if value.is_real is False or not value.is_Float:
        return _NAN if not value.is_Float else mpmath.mpf(value._mpf_)
    return mpmath.mpf(value._mpf_)


def _sign(x):
    if mpmath.isnan(x):
        return None
    return (x > 0) - (x < 0)


def _truth(cond, signs, values):
    kind = cond[0]
    if kind == "const":
        return cond[1]
    if kind == "rel":
        side = cond[2]
        s = signs.get(side) if isinstance(side, int) else _sign(_constant(side))
        return None if s is None else bool(cond[1](s))
    parts = [_truth(c, signs, values) for c in cond[1]]
    if any(p is None for p in parts):
        return None
    if kind == "and":
        return all(parts)
    if kind == "or":
        return any(parts)
    return not parts[0]


@dataclass
class _Sweep:
    """Node values at one point and precision, with the choice made at every switch."""

    values: list
    choices: dict  # switch node -> its weights on its args (branch selection or slope)
    sides: dict  # node id -> the sign used for it when deciding a switch
    ties: dict  # max/min node -> positions of the arguments that attain it
    consts: list  # the graph's constants as mpf at this precision


def _evaluate(graph, z, forced):
    """Evaluate every node at the flat point z (mpf values). `forced` overrides decisions:
    node id -> the sign (-1, 0, 1) of a node that decides a switch; ('tie', max/min node) ->
    the positions of its arguments that attain it."""
    values = [None] * len(graph.nodes)
    const = [_constant(c) for c in graph.constants]
    sweep = _Sweep(values, {}, {}, {}, const)
    for i, node in enumerate(graph.nodes):
        kind = node.kind
        if kind == _INPUT:
            v = z[node.data]
        elif kind == _CONST:
            v = const[node.data]
        elif kind == _ADD:
            v = const[node.data] + mpmath.fsum(values[a] for a in node.args)
        elif kind == _MUL:
            v = const[node.data]
            for a in node.args:
                v = v * values[a]
        elif kind == _FN:
            v = _call(node.data.value, _clamped(node.data, [values[a] for a in node.args]))
        else:
            v, sweep.choices[i] = _choose(i, node, sweep, forced)
        values[i] = v
    return sweep


def _choose(i, node, sweep, forced):
    """(value, weights on args) of switch node i under the decided signs and ties."""
    kind = node.kind
    args = node.args
    values, sides = sweep.values, sweep.sides
    for s in _switch_sides(node):
        if s not in sides:
            sides[s] = forced[s] if s in forced else _sign(values[s])
    nan = (_NAN, tuple(_NAN for _ in args))
    if kind == _ABS:
        s = sides[args[0]]
        if s is None:
            return nan
        # a forced side keeps its branch s * x also where x has crossed 0 (a probe or a
        # limit sample beyond a switch that is off its kink at the point): f is that branch
        v = values[args[0]]
        return (abs(v) if s == 0 else s * v), (mpmath.mpf(s),)
    if kind == _STEP:
        s = sides[args[0]]
        func, at_zero = node.data
        if s is None:
            return nan
        if func is sympy.sign:
            return mpmath.mpf(s), (mpmath.mpf(0),)
        step = mpmath.mpf(1) if s > 0 else sweep.consts[at_zero] if s == 0 else 0
        return mpmath.mpf(step), (mpmath.mpf(0),)
    if kind in (_MAX, _MIN):
        vals = [values[a] for a in args]
        if any(mpmath.isnan(v) for v in vals):
            return nan
        best = max(vals) if kind == _MAX else min(vals)
        tied = forced.get(("tie", i)) or [k for k, v in enumerate(vals) if v == best]
        sweep.ties[i] = tied
        w = mpmath.mpf(1) / len(tied)
        if ("tie", i) in forced:  # the forced arguments, also where another has overtaken them
            best = mpmath.fsum(vals[k] for k in tied) * w
        return best, tuple(w if k in tied else mpmath.mpf(0) for k in range(len(args)))
    for k, cond in enumerate(node.data):
        truth = _truth(cond, sides, values)
        if truth is None:
            return nan
        if truth:
            return values[args[k]], tuple(mpmath.mpf(k == j) for j in range(len(args)))
    return nan


def _partials(graph, sweep, order):
    """First (and for order 2 second) local partials of every node at the sweep's values."""
    first, second = [None] * len(graph.nodes), [None] * len(graph.nodes)
    values = sweep.values
    for i, node in enumerate(graph.nodes):
        kind = node.kind
        if kind in (_INPUT, _CONST):
            continue
        if kind == _ADD:
            first[i] = (mpmath.mpf(1),) * len(node.args)
        elif kind == _MUL:
            first[i], second[i] = _product_partials(node, values, sweep.consts, order)
        elif kind == _FN:
            vals = _clamped(node.data, [values[a] for a in node.args])
            first[i] = tuple(_call(g, vals) for g in node.data.grads)
            if order == 2:
                second[i] = tuple(tuple(_call(h, vals) for h in row)
                                  for row in node.data.hessian)
        else:
            first[i] = sweep.choices[i]
    return first, second


def _product_partials(node, values, consts, order):
    c = consts[node.data]
    vals = [values[a] for a in node.args]
    n = len(vals)
    first = []
    for k in range(n):
        p = c
        for j in range(n):
            if j != k:
                p = p * vals[j]
        first.append(p)
    if order == 1 or n < 2:
        return tuple(first), None
    second = [[mpmath.mpf(0)] * n for _ in range(n)]
    for k in range(n):
        for m in range(k + 1, n):
            p = c
            for j in range(n):
                if j != k and j != m:
                    p = p * vals[j]
            second[k][m] = second[m][k] = p
    return tuple(first), tuple(tuple(r) for r in second)


def _adjoints(graph, first, n):
    """Reverse sweep: d output / d node for every node (the first n are the gradient)."""
    adjoint = [mpmath.mpf(0)] * len(graph.nodes)
    adjoint[graph.output] = mpmath.mpf(1)
    for i in range(graph.output, n - 1, -1):
        a = adjoint[i]
        p = first[i]
        if p is None:
            continue
        for k, j in enumerate(graph.nodes[i].args):
            adjoint[j] += a * p[k]
    return adjoint


def _tangents(graph, first, n, s):
    """Forward sweep along input s: node -> tangent, for the nodes that depend on input s."""
    nodes = graph.nodes
    tangent = {s: mpmath.mpf(1)}
    for i in range(n, graph.output + 1):
        p = first[i]
        if p is None:
            continue
        acc = None
        for k, j in enumerate(nodes[i].args):
            t = tangent.get(j)
            if t is not None:
                acc = p[k] * t if acc is None else acc + p[k] * t
        if acc is not None:
            tangent[i] = acc
    return tangent


def _hessian_row(graph, first, second, n, s, adjoint):
    """Forward-over-reverse along input s: row s of the Hessian, given the adjoints. Only the
    nodes that depend on input s carry a tangent (the others' is exactly zero, not 0 * inf),
    and only their ancestors an adjoint tangent: the cost is that of s's cone, not the graph."""
    nodes = graph.nodes
    tangent = _tangents(graph, first, n, s)
    dadjoint = {}
    for i in range(graph.output, n - 1, -1):
        p = first[i]
        if p is None:
            continue
        da = dadjoint.get(i)
        q = second[i]
        args = nodes[i].args
        if q is not None and i in tangent:
            a = adjoint[i]
            for k, j in enumerate(args):
                curvature = None
                for m, jm in enumerate(args):
                    t = tangent.get(jm)
                    if t is not None:
                        term = q[k][m] * t
                        curvature = term if curvature is None else curvature + term
                extra = None if curvature is None else a * curvature
                if da is not None:
                    extra = da * p[k] if extra is None else extra + da * p[k]
                if extra is not None:
                    dadjoint[j] = dadjoint[j] + extra if j in dadjoint else extra
        elif da is not None:
            for k, j in enumerate(args):
                dadjoint[j] = dadjoint[j] + da * p[k] if j in dadjoint else da * p[k]
    zero = mpmath.mpf(0)
    return [dadjoint.get(j, zero) for j in range(n)]


def _derivatives(graph, z, forced, order, sweep=None, rows=None):
    """(gradient, Hessian or None, sweep, partials) at z under forced switch decisions, in
    mpf; `sweep`, when given, is z's evaluation under the same decisions; `rows`, when given,
    the only Hessian rows computed (in that order)."""
    n = len(graph.names)
    if sweep is None:
        sweep = _evaluate(graph, z, forced)
    first, second = _partials(graph, sweep, order)
    adjoint = _adjoints(graph, first, n)
    hess = None
    if order == 2:
        hess = [_hessian_row(graph, first, second, n, s, adjoint)
                for s in (range(n) if rows is None else rows)]
    return adjoint[:n], hess, sweep, (first, second)


def _magnitudes(graph, partials, order):
    """The chain rule run on absolute values (|local partials|, |adjoints|): per entry, the
    size of the terms whose sum is the derivative. A method that sums those terms in float64
    is exact to a few ulps of this, not of the (possibly cancelled) derivative itself."""
    n = len(graph.names)
    first, second = partials
    first = [None if p is None else tuple(abs(v) for v in p) for p in first]
    second = [None if q is None else tuple(tuple(abs(v) for v in row) for row in q)
              for q in second]
    adjoint = _adjoints(graph, first, n)
    hess = None
    if order == 2:
        hess = np.array([[float(v) for v in _hessian_row(graph, first, second, n, s, adjoint)]
                         for s in range(n)])
    return np.array([float(v) for v in adjoint[:n]]), hess


# ---- the reference: two precisions, exact switches, one-sided derivatives, limits ----


@dataclass(frozen=True)
class Kink:
    """Switches exactly at their switching point, with the one-sided derivatives of f along
    each flat variable (tuples of floats)."""

    node: str
    left: tuple
    right: tuple

    @property
    def differentiable(self) -> bool:
        return all(_same(a, b) for a, b in zip(self.left, self.right))


def _same(a, b, digits=DIGITS - 2):
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= 10.0**-digits * max(abs(a), abs(b))


@dataclass(frozen=True)
class Reference:
    """The reference derivatives at one point, entry by entry over the flat variables.

    `gradient` holds the best value (nan: none), `error` its absolute error bound; `low` and
    `high` bound the values that are right (equal to `gradient` except at a kink, where any
    value between the one-sided derivatives is a convention). `status` per entry: 'exact'
    (derivative at the point), 'limit' (formula undefined there: limit of the derivative),
    'kink', 'none' (no reference: one-sided limits differ or f is undefined), 'undefined'
    (the derivative does not exist: judged by nobody). Same fields for the Hessian (None at
    order 1). `magnitude` (and `hessian_magnitude`): the chain rule on absolute values, the
    scale of float64 rounding in any method that sums the same terms. `alternatives`: where a
    switch falls the other way a few ulps from the point (relu(x*y - c) with the float c =
    x*y), the exact derivatives at the point with the switches decided as there: a float method
    may rightly take either branch. `digits`: significant digits proven by two precisions
    (min over entries).
    """

    gradient: np.ndarray
    error: np.ndarray
    low: np.ndarray
    high: np.ndarray
    status: tuple
    hessian: np.ndarray | None
    hessian_error: np.ndarray | None
    hessian_low: np.ndarray | None
    hessian_high: np.ndarray | None
    hessian_status: tuple | None
    magnitude: np.ndarray
    hessian_magnitude: np.ndarray | None
    alternatives: tuple  # (gradient, Hessian or None) with switches decided as a few ulps away
    digits: float
    kinks: tuple
    notes: tuple


def _agreement(a, b):
    """(value b as float, absolute error bound, digits in common) of two precisions' results."""
    if mpmath.isnan(a) or mpmath.isnan(b):
        return math.nan, math.nan, 0.0
    if mpmath.isinf(a) or mpmath.isinf(b):
        return (float(b), 0.0, math.inf) if a == b else (math.nan, math.nan, 0.0)
    diff = abs(a - b)
    if diff == 0:
        return float(b), 0.0, math.inf
    digits = float(-mpmath.log10(diff / abs(b))) if b != 0 else 0.0
    return float(b), float(diff), digits


def _flat_point(args):
    return [mpmath.mpf(float(v)) for a in args for v in np.ravel(np.asarray(a, dtype=float))]


def _zero_sides(graph, low, high):
    """The decisions at the point's switching points: nodes deciding a switch that are exactly
    zero, or zero to every digit the two precisions share (noise), map to 0; a max/min whose
    arguments tie (exactly, or to every shared digit) maps ('tie', node) to the tied positions."""
    zero = {}
    for s, sign in high.sides.items():
        a, b = low.values[s], high.values[s]
        if sign == 0 or (sign is not None and _noise(a, b)):
            zero[s] = 0
    for i, tied in high.ties.items():
        args = graph.nodes[i].args
        best = high.values[i]
        near = [k for k in range(len(args)) if k in tied or _noise(
            low.values[args[k]] - low.values[i], high.values[args[k]] - best)]
        if len(near) > 1:
            zero[("tie", i)] = near
    return zero


def _noise(a, b):
    """True when two precisions' values of one difference share no digit (it is zero)."""
    return a == b == 0 or (a != b and abs(a - b) >= abs(b) / 2)


def compute(f, args, names, order=1) -> Reference:
    """The reference derivatives of f at args (flattened over names), order 1 or 2.

    Raises Unavailable when f cannot be traced into SymPy.

    Example:
        >>> import diffkit as dk
        >>> r = compute(lambda x, w, b: dk.sigmoid(w * x + b), (1.0, 0.0, 0.0), ("x", "w", "b"))
        >>> [float(g) for g in r.gradient], r.digits >= DIGITS
        ([0.0, 0.25, 0.25], True)
    """
    graph = trace(f, args, names)
    point = _flat_point(args)
    for low_dps, high_dps in LADDER:
        result = _at_precisions(graph, point, order, low_dps, high_dps)
        if result.digits >= DIGITS:
            return result
    return result


def _at_precisions(graph, point, order, low_dps, high_dps):
    n = len(graph.names)
    runs = {}
    for dps in (low_dps, high_dps):
        with mpmath.workdps(dps):
            z = [mpmath.mpf(p) for p in point]
            runs[dps] = (z, _evaluate(graph, z, {}))
    zero = _zero_sides(graph, runs[low_dps][1], runs[high_dps][1])
    with mpmath.workdps(high_dps):
        settled = _settled_sides(graph, runs[high_dps][0], zero)
    zero = {k: v for k, v in zero.items() if k not in settled}
    forced = {**zero, **settled}
    high = runs[high_dps][1]
    for s, sign in high.sides.items():
        if s not in forced and sign is not None:
            forced[s] = sign  # both precisions decide every switch the same way
    for i, tied in high.ties.items():
        forced.setdefault(("tie", i), tied)
    derivs = {}
    for dps in (low_dps, high_dps):
        with mpmath.workdps(dps):
            # the decisions at the point are the raw ones unless some switch is at zero
            derivs[dps] = _derivatives(graph, runs[dps][0], forced, order,
                                       None if zero or settled else runs[dps][1])
    grad, gerr, gdigits = _combine(derivs[low_dps][0], derivs[high_dps][0])
    with mpmath.workdps(low_dps):
        magnitude, hmagnitude = _magnitudes(graph, derivs[low_dps][3], order)
    status = ["exact"] * n
    notes = []
    hess = herr = None
    if order == 2:
        hess, herr, hdigits = _combine_matrix(derivs[low_dps][1], derivs[high_dps][1])
        gdigits = min(gdigits, hdigits)
    low, high = grad.copy(), grad.copy()
    hstatus = [["exact"] * n for _ in range(n)] if order == 2 else None
    hlow = hhigh = None
    if order == 2:
        hlow, hhigh = hess.copy(), hess.copy()
    kinks = ()
    if zero:
        kink = _one_sided(graph, point, forced, zero, order, (low_dps, high_dps))
        kinks = (kink.kink,)
        for s in range(n):
            left, right = kink.kink.left[s], kink.kink.right[s]
            if kink.jumps[s]:
                status[s] = "undefined"
                grad[s] = math.nan
            elif not _same(left, right):
                status[s] = "kink"
                low[s], high[s] = min(left, right), max(left, right)
                grad[s] = math.nan
            else:
                grad[s] = low[s] = high[s] = right
        if order == 2:
            # a switch that does not move to first order along s (relu(x * y) at 0, 0) may
            # switch along curves through the point: no second derivative involving s
            flat = _degenerate(graph, derivs[high_dps][3][0], n, zero)
            for s in range(n):
                for r in range(n):
                    if status[s] != "exact" or status[r] != "exact" or s in flat or r in flat:
                        hstatus[s][r] = "undefined"  # the gradient is not differentiable
                        hess[s, r] = math.nan
                        continue
                    values = [kink.left_rows[s][r], kink.right_rows[s][r],
                              *kink.quadrants.get((min(s, r), max(s, r)), ())]
                    right = values[1]
                    if not all(_same(v, right) for v in values):
                        hstatus[s][r] = "kink"
                        hlow[s, r], hhigh[s, r] = min(values), max(values)
                        hess[s, r] = math.nan
                    else:
                        hess[s, r] = hlow[s, r] = hhigh[s, r] = right
            _symmetric_kinks(hess, hlow, hhigh, hstatus)
    undefined_value = not mpmath.isfinite(derivs[high_dps][2].values[graph.output])
    # an entry that is nan (0 * log 0) or infinite at the point: its limit, or no derivative
    missing = [s for s in range(n) if status[s] == "exact" and not math.isfinite(grad[s])]
    hmissing = [] if order == 1 else [
        (s, r) for s in range(n) for r in range(n)
        if hstatus[s][r] == "exact" and not math.isfinite(hess[s, r])]
    if (missing or hmissing) and not undefined_value:
        # every switch off its kink keeps its side along the limit (the function is that
        # branch near the point); only those at their kink may switch
        kept = {k: v for k, v in forced.items() if k not in zero}
        limit = _limit(graph, point, order, high_dps, missing, hmissing, kept)
        for s in missing:
            grad[s], gerr[s], status[s], low[s], high[s] = limit.gradient[s]
        for s, r in hmissing:
            hess[s, r], herr[s, r], hstatus[s][r], hlow[s, r], hhigh[s, r] = limit.hessian[s, r]
        if order == 2:  # no second derivative where the first does not exist
            for s in range(n):
                if status[s] != "exact" and status[s] != "limit":
                    for r in range(n):
                        hstatus[s][r] = hstatus[r][s] = "undefined"
        notes.extend(limit.notes)
    elif undefined_value:
        notes.append("f has no finite real value at this point (log of a negative, a pole, or "
                     "beyond any float): its derivatives have no reference")
        for s in missing:
            status[s] = "none"
        for s, r in hmissing:
            hstatus[s][r] = "none"
    return Reference(
        grad, gerr, low, high, tuple(status), hess, herr, hlow, hhigh,
        None if hstatus is None else tuple(tuple(r) for r in hstatus),
        np.nan_to_num(magnitude, nan=0.0, posinf=0.0),
        None if hmagnitude is None else np.nan_to_num(hmagnitude, nan=0.0, posinf=0.0),
        _alternatives(graph, point, forced, {**zero, **settled}, order, high_dps), gdigits, kinks,
        tuple(notes))


def _symmetric_kinks(hess, low, high, status):
    """Make the mixed entries (s, r) and (r, s) one judgement, in place. Row s sees only the
    switches that move along x_s: relu(x) * (y - x) at (0, 0) has a kink in d/dx (df/dy) =
    relu'(x), while d/dy (df/dx) keeps relu'(0) fixed and looks exact. Both are the same mixed
    partial where it exists, so a kink in either is a kink of both (the hull of their
    intervals), and an undefined one leaves both undefined."""
    n = len(status)
    for s in range(n):
        for r in range(s + 1, n):
            pair = (status[s][r], status[r][s])
            if "undefined" in pair:
                status[s][r] = status[r][s] = "undefined"
                hess[s, r] = hess[r, s] = math.nan
            elif "kink" in pair:
                status[s][r] = status[r][s] = "kink"
                low[s, r] = low[r, s] = min(low[s, r], low[r, s])
                high[s, r] = high[r, s] = max(high[s, r], high[r, s])
                hess[s, r] = hess[r, s] = math.nan


_NUDGE_ULPS = 4


def _alternatives(graph, point, forced, fixed, order, dps):
    """(gradient, Hessian) at the point for each other way the switches fall at a point a few
    ulps away (every input moved by NUDGE_ULPS ulps: all up, all down, alternating both ways).
    The switches in `fixed` (at their kink, or settled: they never switch near the point) keep
    their decisions."""
    n = len(graph.names)
    values = np.array(point, dtype=float)
    signs = [np.ones(n), -np.ones(n), (-1.0) ** np.arange(n), -((-1.0) ** np.arange(n))]
    seen, out = [], []
    with mpmath.workdps(dps):
        z = [mpmath.mpf(p) for p in point]
        for sign in signs:
            moved = values * (1 + sign * _NUDGE_ULPS * np.finfo(float).eps)
            near = _evaluate(graph, [mpmath.mpf(float(v)) for v in moved], {})
            decided = dict(forced)
            for k, s in near.sides.items():
                if k not in fixed and s is not None and s != forced.get(k):
                    decided[k] = s
            for i, tied in near.ties.items():
                if ("tie", i) not in fixed and tied != forced.get(("tie", i)):
                    decided["tie", i] = tied
            if decided == forced or decided in seen:
                continue
            seen.append(decided)
            grad, hess, _, _ = _derivatives(graph, z, decided, order)
            out.append((np.array([float(g) for g in grad]), None if hess is None else
                        np.array([[float(h) for h in row] for row in hess])))
    return tuple(out)


def _combine(a, b):
    parts = [_agreement(x, y) for x, y in zip(a, b)]
    values = np.array([p[0] for p in parts], dtype=float)
    errors = np.array([p[1] for p in parts], dtype=float)
    digits = min((p[2] for p in parts if not math.isnan(p[0])), default=math.inf)
    return values, errors, digits


def _combine_matrix(a, b):
    n = len(a)
    values, errors, digits = _combine([x for row in a for x in row], [x for row in b for x in row])
    return values.reshape(n, n), errors.reshape(n, n), digits


def _settled_sides(graph, z, zero):
    """The switches at their switching point that never switch near it: node k (deciding a
    switch) -> its sign near the point, where k does not move to first order and its Hessian
    over the inputs it depends on is definite, so k keeps that sign all around the point
    (y*y in relu(y*y) at 0: f is y*y there, with Hessian 2). Only a k whose ancestors hold no
    switch still at its switching point (settled ones, in topological order, are their branch:
    relu(relu(y*y))), and only where each switch k decides has the same value on both sides
    at the point: where(y*y > 0, 1 + 2*y, y) at 0 jumps there and has no derivative."""
    n = len(graph.names)
    settled = {}
    for k in sorted(k for k in zero if isinstance(k, int) and k >= n):
        ancestors = _ancestors(graph, [k])
        # an input at zero (x in relu(x) + abs(y*y)) is no switch of k's: only switch nodes
        if any(graph.nodes[j].kind in _SWITCHES and (("tie", j) in zero or any(
                s in zero and s not in settled for s in _switch_sides(graph.nodes[j])))
               for j in ancestors):
            continue
        gradient, hessian, _, _ = _derivatives(
            Graph(graph.names, graph.nodes, k, graph.constants), z, dict(settled), 2)
        inputs = sorted(j for j in ancestors if j < n)
        if not inputs or any(gradient[j] != 0 for j in range(n)):
            continue  # no input, or k moves to first order: a real kink
        matrix = mpmath.matrix([[hessian[a][b] for b in inputs] for a in inputs])
        scale = max(abs(v) for v in matrix)
        if scale == 0:
            continue
        eigenvalues = mpmath.eigsy(matrix, eigvals_only=True)
        margin = scale * mpmath.mpf(10) ** -(mpmath.mp.dps // 2)
        sign = 1 if all(e > margin for e in eigenvalues) else (
            -1 if all(e < -margin for e in eigenvalues) else 0)
        if sign and _continuous(graph, z, settled, k, sign):
            settled[k] = sign
    return settled


def _continuous(graph, z, settled, k, sign):
    """True when every switch that node k decides has the same value at z with k decided as
    0 (as at the point) and as `sign` (as all around it)."""
    at = _evaluate(graph, z, {**settled, k: 0}).values
    near = _evaluate(graph, z, {**settled, k: sign}).values
    tolerance = mpmath.mpf(10) ** -(mpmath.mp.dps // 2)
    for i, node in enumerate(graph.nodes):
        if node.kind in _SWITCHES and k in _switch_sides(node):
            a, b = at[i], near[i]
            if not (a == b or abs(a - b) <= tolerance * (1 + abs(a))):
                return False
    return True


def _degenerate(graph, first, n, zero):
    """The inputs along which some switch at its switching point depends on them but does not
    move to first order."""
    switches = [k for k in zero if isinstance(k, int)]
    out = set()
    for s in range(n):
        tangent = _tangents(graph, first, n, s)
        if any(k in tangent and tangent[k] == 0 for k in switches):
            out.add(s)
    return out


@dataclass(frozen=True)
class _Sides:
    kink: Kink
    jumps: tuple
    left_rows: list
    right_rows: list
    quadrants: dict  # (s, r), s < r -> d2f/dx_s dx_r with the switches as at the 4 diagonals


def _one_sided(graph, point, forced, zero, order, precisions):
    """Derivatives of f just left and right of the point along each flat variable: every
    switch that is exactly at its switching point decides as it does at x -+ delta e_s."""
    n = len(graph.names)
    dps = precisions[1]
    left, right, jumps = [], [], []
    left_rows, right_rows = [], []
    with mpmath.workdps(dps):
        z = [mpmath.mpf(p) for p in point]
        base = _evaluate(graph, z, forced).values[graph.output]
        for s in range(n):
            sided = []
            jump = False
            for direction in (-1, 1):
                side_forced = _side_signs(graph, z, forced, zero, {s: direction}, dps)
                grad, hess, sweep, _ = _derivatives(graph, z, side_forced, order)
                value = sweep.values[graph.output]
                if not (value == base or abs(value - base) <= 10 ** (-dps // 2) * (1 + abs(base))):
                    jump = True
                sided.append((float(grad[s]), None if hess is None else
                              [float(h) for h in hess[s]]))
            left.append(sided[0][0])
            right.append(sided[1][0])
            left_rows.append(sided[0][1])
            right_rows.append(sided[1][1])
            jumps.append(jump)
        quadrants = {}
        if order == 2:
            # a mixed partial sees switches of both variables at once: relu(x) * relu(y) at 0
            # is 0 along each axis, xy in the quadrant x, y > 0 (its d2f/dxdy: 1 there); only
            # pairs of inputs that both reach a switch at its switching point can see that
            touched = sorted(_inputs_of(graph, [k if isinstance(k, int) else k[1]
                                                for k in zero]))
            for number, s in enumerate(touched):
                for r in touched[number + 1:]:
                    quadrants[s, r] = [float(_derivatives(graph, z, _side_signs(
                        graph, z, forced, zero, {s: a, r: b}, dps), 2, rows=[s])[1][0][r])
                        for a in (-1, 1) for b in (-1, 1)]
    labels = list(dict.fromkeys(_label(graph, zero)))
    text = ", ".join(labels[:_MAX_LABELS]) + (" and others" if len(labels) > _MAX_LABELS else "")
    return _Sides(Kink(f"{text} at its switching point", tuple(left), tuple(right)),
                  tuple(jumps), left_rows, right_rows, quadrants)


def _ancestors(graph, nodes) -> set:
    """Every node that one of `nodes` depends on (through its arguments, at any depth)."""
    seen, stack = set(), list(nodes)
    while stack:
        for j in graph.nodes[stack.pop()].args:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


def _inputs_of(graph, nodes) -> set:
    """The inputs (flat positions) that any of `nodes` is or depends on."""
    n = len(graph.names)
    return {j for j in _ancestors(graph, nodes) | set(nodes) if j < n}


def _label(graph, zero):
    for i, node in enumerate(graph.nodes):
        if ("tie", i) in zero or (node.kind in _SWITCHES
                                  and any(s in zero for s in _switch_sides(node))):
            yield node.label or "a switch"


def _side_signs(graph, z, forced, zero, moves, dps):
    """Switch decisions just beside the point, moved by direction * delta along e_s for each
    s -> direction in `moves`: those at a switching point as they fall there, all others as
    at the point."""
    moved = list(z)
    for s, direction in moves.items():
        moved[s] = z[s] + direction * mpmath.mpf(10) ** (-(dps // 3)) * max(1, abs(z[s]))
    near = _evaluate(graph, moved, {k: v for k, v in forced.items() if k not in zero})
    out = dict(forced)
    for k, at_point in zero.items():
        if isinstance(k, tuple):  # of the tied arguments, those still on top beside the point
            args = graph.nodes[k[1]].args
            vals = [near.values[args[m]] for m in at_point]
            best = max(vals) if graph.nodes[k[1]].kind == _MAX else min(vals)
            out[k] = [m for m, v in zip(at_point, vals) if v == best]
        else:
            sign = near.sides.get(k)
            out[k] = 0 if sign is None else sign
    return out


@dataclass(frozen=True)
class _Limit:
    gradient: dict  # entry -> (value, error, status)
    hessian: dict  # (row, column) -> (value, error, status)
    notes: tuple


def _limit(graph, point, order, dps, missing, hmissing, kept):
    """Where the derivative's formula is undefined or infinite at the point (0 * log 0,
    1 / sqrt(0)): entry s (and Hessian row s) along e_s alone, from both sides at two distances,
    at high precision. Where f jumps along the line there is no derivative ('undefined');
    else the limit of the derivative's formula IS the one-sided derivative (the mean value
    theorem), and different one-sided limits make a kink. Where the formula is undefined on the
    whole line, the one-sided difference quotients of f itself (gradient entries only). `kept`
    decides the switches that are off their kink as at the point: the samples lie where f is
    that branch however far they are (sqrt(relu(x)) at -1e-300 is 0 there, not sqrt(x))."""
    n = len(graph.names)
    powers = (dps // 3, dps // 2)
    rows = sorted(set(missing) | {s for s, _ in hmissing})
    gradient, hessian = {}, {}
    with mpmath.workdps(dps):
        z = [mpmath.mpf(p) for p in point]
        f0 = _evaluate(graph, z, {}).values[graph.output]
        for s in rows:
            direction = [0] * n
            # relative to x_s: the line stays on the side of 0 that x_s is on (relu(x)**y at
            # y = 1e-300 is 0 for y > 0, inf for y < 0: a 1e-23 step took that for a jump)
            direction[s] = abs(z[s]) if z[s] != 0 else 1
            samples = _samples(graph, z, direction, powers, order, [s], kept)
            jumps = _jumps(samples, powers, f0, dps)
            if s in missing:
                sides = _sided(samples, powers, lambda g, s=s: g[0][s], dps)
                if None in sides and mpmath.isfinite(f0) and not jumps:
                    # the formula has no limit on a side where f is defined (sqrt(relu(x)**2)
                    # at 0 is inf * 0 on the left, where f is 0): f's own one-sided quotient
                    quotients = {key: ((v[2] - f0) / (key[0] * mpmath.mpf(10) ** -key[1]
                                                      * direction[s]),)
                                 for key, v in samples.items()}
                    sides = [q if side is None else side for side, q in zip(
                        sides, _sided(quotients, powers, lambda q: q[0], dps))]
                gradient[s] = (_UNDEFINED if jumps else _merge_sides(*sides))
            for r in range(n):
                if (s, r) in hmissing:
                    hessian[s, r] = _entry_limit(samples, powers, lambda g, r=r: g[1][0][r],
                                                 dps, jumps)
    notes = ("the derivative formula is undefined or infinite at the point (a form like "
             "0 * log 0); there the reference is its limit from both sides",)
    return _Limit(gradient, hessian, notes)


def _jumps(samples, powers, f0, dps):
    """True when f itself does not tend to f0 along the line (on a side where it is defined)."""
    near = powers[-1]
    tolerance = mpmath.mpf(10) ** -(dps // 8) * max(1, abs(f0)) if mpmath.isfinite(f0) else 0
    for side in (-1, 1):
        value = samples[side, near][2]
        if mpmath.isnan(value):
            continue  # this side leaves the domain: one-sided, not a jump
        if not mpmath.isfinite(f0) or not mpmath.isfinite(value) or abs(value - f0) > tolerance:
            return True
    return False


def _samples(graph, z, direction, powers, order, rows, kept):
    """(gradient, Hessian rows) at z + side * 10**-power * direction for both sides and both
    powers, with the switch decisions in `kept`."""
    n = len(graph.names)
    out = {}
    for side in (-1, 1):
        for power in powers:
            t = side * mpmath.mpf(10) ** -power
            moved = [x + t * d for x, d in zip(z, direction)]
            sweep = _evaluate(graph, moved, dict(kept))
            first, second = _partials(graph, sweep, order)
            adjoint = _adjoints(graph, first, n)
            grad = adjoint[:n]
            hess = ([_hessian_row(graph, first, second, n, s, adjoint) for s in rows]
                    if order == 2 else [])
            out[side, power] = (grad, hess, sweep.values[graph.output])
    return out


_UNDEFINED = (math.nan, 0.0, "undefined", math.nan, math.nan)


def _entry_limit(samples, powers, pick, dps, jumps=False):
    """(value, error, status, low, high) of one entry from its one-sided limits."""
    if jumps:
        return _UNDEFINED
    return _merge_sides(*_sided(samples, powers, pick, dps))


def _sided(samples, powers, pick, dps):
    """[left, right]: each side's (value, error) limit of pick(sample), or None (no limit)."""
    return [_converged(*(pick(samples[side, p]) for p in powers), dps) for side in (-1, 1)]


def _converged(far, near, dps):
    """(value, error) of a one-sided limit from its values at two distances (far, near), or
    None when they show no limit; a value growing without bound is +-inf."""
    if mpmath.isnan(far) or mpmath.isnan(near):
        return None
    if mpmath.isinf(near):
        return (float(near), 0.0)
    diff = abs(near - far)
    if abs(near) > 100 * abs(far) + 1 and (near > 0) == (far > 0):
        return (math.inf if near > 0 else -math.inf, 0.0)
    tiny = mpmath.mpf(10) ** -(dps // 4)  # both this close to 0: the limit is 0 (or below it)
    if max(abs(far), abs(near)) <= tiny:
        return (0.0, float(max(abs(far), abs(near))))
    if diff > mpmath.mpf(10) ** -10 * abs(near):
        return None
    return (float(near), float(diff))


def _merge_sides(left, right):
    """(value, error, status, low, high) from the left and right limits (None: no limit)."""
    if left is None and right is None:
        return (math.nan, math.nan, "none", math.nan, math.nan)
    if left is None or right is None:
        value, error = left or right
        return (value, error, "limit", value, value)
    if _same(left[0], right[0]) or abs(left[0] - right[0]) <= left[1] + right[1]:
        error = max(left[1], right[1], abs(left[0] - right[0]))
        return (right[0], error, "limit", right[0], right[0])
    # f continuous, one-sided derivatives different: a kink of a function with no switch
    return (math.nan, max(left[1], right[1]), "kink", min(left[0], right[0]),
            max(left[0], right[0]))
