"""Conformance of another AD engine, driven through an adapter (see diffkit.adapters): every
operation alone against diffkit's reference at generic points, tails, domain edges and kinks;
compositions (the article's cases, seeded random expressions); the engine's properties."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
import sys
import time
import warnings
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy
from tabulate import tabulate

from diffkit import corpus, reference
from diffkit.check import CLAIMED, accepted, allowance, judge
from diffkit.compare import EPS, FLOOR, NOISE_ULPS
from diffkit.errors import InputError, first_line
from diffkit.ops import PRIMITIVES
from diffkit.reverse import grad
from diffkit.reverse import trace as trace_tape

SHIPPED = ("diffkit", "torch", "jax", "micrograd")  # short names for diffkit.adapters.<name>
# name -> differentiable inputs, for every elementwise primitive differentiable in all of them
# (parameters such as leaky_relu's alpha are fixed per engine, not inputs)
SCALAR_OPS = {name: p.arity - len(p.parameters) for name, p in PRIMITIVES.items()
              if p.elementwise and p.vjp and all(r is not None for r in p.vjp)}
DEPTHS = (10, 100, 1000, 10_000, 100_000)
QUICK_DEPTHS = DEPTHS[:4]
DEPTH_REQUIRED = 10_000  # a chain this deep must differentiate (recursion stops near 1000)
DEPTH_OPS = ("negative", "sin", "tanh", "add", "multiply")  # the chain's op: the first supported
COST_LIMIT = 1.5  # cost factor per logistic-map step: about 1 for a tape, 2 for every path
COST_CALLS = 50_000  # the logistic map grows until gradients() makes this many Python calls
RANDOM_EXPRESSIONS = (40, 8)  # full, quick
VALUE_TOLERANCE = CLAIMED
SEED = 0

# ---- the points each op is checked at: (kind, point) ----

_GENERIC = (-2.5, -1.1, -0.3, 0.4, 0.9, 1.7, 2.6)
_TAILS = (-30.0, 30.0)
_NEAR_KINK = (-1e-8, 1e-8, -1e-300, 1e-300)
_PAIRS = ((-1.3, 0.7), (0.4, -2.1), (1.6, 2.3), (-0.6, -1.4), (2.2, 0.9))
_SPECIAL = {
    "log": (("generic", (0.05,)), ("generic", (3.5,)), ("tail", (1e6,)),
            ("edge", (1e-300,))),
    "sqrt": (("generic", (0.05,)), ("generic", (3.5,)), ("tail", (1e6,)),
             ("edge", (1e-300,)), ("edge", (0.0,))),
    "tan": (("edge", (1.5707963,)), ("edge", (-1.5707963,))),
    "power": (("generic", (1.3, 0.7)), ("generic", (0.4, -2.1)), ("generic", (2.0, 3.0)),
              ("generic", (0.5, -0.5)), ("edge", (0.0, 2.0))),
    "divide": (("edge", (1.5, 1e-100)),),
    "maximum": (("kink", (1.0, 1.0)), ("kink", (0.0, 0.0)), ("kink", (-2.0, -2.0)),
                ("near kink", (1.0, 1.0 + 2.0**-40)), ("near kink", (-3.0 - 2.0**-40, -3.0))),
}
_ONLY_SPECIAL = ("power",)  # ops whose generic points are only their own


def points(name: str, quick: bool = False) -> tuple:
    """Return the (kind, point) pairs op `name` is checked at; kind is generic, tail, edge,
    near kink or kink. Points where diffkit's own value is not finite are left out.

    Example:
        >>> points("relu", quick=True)
        (('generic', (-1.1,)), ('generic', (0.9,)), ('kink', (0.0,)))
    """
    prim, arity = PRIMITIVES[name], SCALAR_OPS[name]
    found = []
    if name not in _ONLY_SPECIAL:
        if arity == 1:
            generic = _GENERIC[1::3] if quick else _GENERIC
            found += [("generic", (x,)) for x in generic]
            found += [] if quick else [("tail", (x,)) for x in _TAILS]
        else:
            found += [("generic", p) for p in (_PAIRS[:2] if quick else _PAIRS)]
    special = _SPECIAL.get(name, ())
    found += [s for k, s in enumerate(special)
              if not quick or s[0] in ("edge", "kink") or (name in _ONLY_SPECIAL and k < 2)]
    if prim.kink and arity == 1:
        found += [] if quick else [("near kink", (x,)) for x in _NEAR_KINK]
        found.append(("kink", (0.0,)))
    params = prim.parameters
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple((kind, p) for kind, p in found
                     if math.isfinite(float(prim(*p, **params))))


# ---- the adapter ----


@dataclass(frozen=True)
class Adapter:
    """An engine as diffkit drives it (see diffkit.adapters for what an adapter defines)."""

    name: str
    source: str
    variable: object
    value: object
    gradients: object
    ops: dict
    params: dict = field(default_factory=dict)


def load(spec) -> Adapter:
    """Return the Adapter of spec: a module, a .py file path, a module name, or a shipped
    adapter's short name (diffkit, torch, jax, micrograd). InputError (one line) when it cannot
    be loaded or is not an adapter.

    Example:
        >>> load("diffkit").name.startswith("diffkit")
        True
    """
    if isinstance(spec, Adapter):
        return spec
    if isinstance(spec, ModuleType):
        module, source = spec, spec.__name__
    else:
        module, source = _import(str(spec)), str(spec)
    missing = [n for n in ("variable", "value", "gradients") if not callable(
        getattr(module, n, None))]
    if missing or not isinstance(getattr(module, "OPS", None), dict):
        what = ", ".join(f"{n}()" for n in missing) or "OPS (a dict)"
        raise InputError(f"adapter {source} is unusable: it defines no {what} (an adapter "
                         f"defines variable, value, gradients and OPS; see diffkit.adapters)")
    ops = dict(module.OPS)
    if not ops:
        raise InputError(f"adapter {source} is unusable: its OPS is empty (map diffkit "
                         f"primitive names such as add, multiply, exp to the engine's callables)")
    for name, fn in ops.items():
        if name not in SCALAR_OPS:
            close = [n for n in SCALAR_OPS if n.startswith(str(name))] or (
                difflib.get_close_matches(str(name), list(SCALAR_OPS), n=1, cutoff=0.5))
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(f"adapter {source} is unusable: OPS names {name!r}, which is not "
                             f"one of diffkit's scalar operations{hint}")
        if not callable(fn):
            raise InputError(f"adapter {source} is unusable: OPS[{name!r}] is not callable")
    params = dict(getattr(module, "PARAMS", None) or {})
    for name, given in params.items():
        known = PRIMITIVES[name].parameters if name in PRIMITIVES else {}
        if not isinstance(given, dict) or not set(given) <= set(known):
            raise InputError(f"adapter {source} is unusable: PARAMS[{name!r}] must map some of "
                             f"{sorted(known) or 'no parameters'} to values")
    adapter = Adapter(str(getattr(module, "NAME", source)), source, module.variable,
                      module.value, module.gradients, ops, params)
    _smoke(adapter)
    return adapter


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise InputError(f"adapter {spec}: no such file")
            loader = importlib.util.spec_from_file_location(f"diffkit_adapter_{path.stem}",
                                                            path)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            return module
        name = f"diffkit.adapters.{spec}" if spec in SHIPPED else spec
        return importlib.import_module(name)
    except InputError:
        raise
    except ImportError as error:
        raise InputError(f"adapter {spec} cannot be imported ({error}); install its engine, or "
                         f"give a .py file or module that defines an adapter") from None
    except Exception as error:  # the adapter's own code failed: one line, never a traceback
        first = first_line(error)
        raise InputError(f"adapter {spec} failed to load: {type(error).__name__}: "
                         f"{first}") from None


def _smoke(adapter: Adapter) -> None:
    """Refuse an adapter whose basic calls fail: variable, value, and gradients of one op."""
    try:
        x = adapter.variable(0.5)
        got = float(adapter.value(x))
        if got != 0.5:
            raise InputError(f"adapter {adapter.source} is unusable: value(variable(0.5)) is "
                             f"{got}, not 0.5")
        if adapter.ops:
            name = next(iter(adapter.ops))
            xs = [adapter.variable(0.5) for _ in range(SCALAR_OPS[name])]
            out = adapter.ops[name](*xs)
            found = list(adapter.gradients(out, xs))
            if len(found) != len(xs):
                raise InputError(f"adapter {adapter.source} is unusable: gradients() returned "
                                 f"{len(found)} values for {len(xs)} inputs")
            [float(g) for g in found]
    except InputError:
        raise
    except Exception as error:
        first = first_line(error)
        raise InputError(f"adapter {adapter.source} is unusable: {type(error).__name__}: "
                         f"{first}") from None


# ---- results ----


@dataclass(frozen=True)
class OpResult:
    """One op checked alone: `verdict` ok, WRONG, convention (right, and at a kink it chose a
    value between the one-sided derivatives: `conventions` says which) or unsupported;
    `checked` points, `wrong` of them, the largest relative error of a derivative, the first
    wrong point (a dict: point, kind, what, expected, got)."""

    name: str
    verdict: str
    checked: int = 0
    wrong: int = 0
    max_rel_error: float = math.nan
    first_wrong: dict | None = None
    conventions: tuple = ()
    mutates: str = ""
    repeatable: bool = True


@dataclass(frozen=True)
class Compositions:
    """The article's cases and seeded random expressions replayed in the engine: `checked`,
    `wrong`, `skipped` (an op or parameter the engine lacks), `examples` of wrong ones, and
    `explained`: every wrong one uses an op already found WRONG or mutating its input."""

    checked: int = 0
    wrong: int = 0
    skipped: int = 0
    examples: tuple = ()
    explained: bool = True


@dataclass(frozen=True)
class Properties:
    """The engine's properties: ops that change their inputs (forward pass or gradients), ops
    whose gradients differ on a second call, the deepest chain that differentiates (of DEPTHS)
    and the error at the first that does not, and the cost factor per logistic-map step."""

    mutating: tuple = ()
    unrepeatable: tuple = ()
    max_depth: int | None = None
    depth_op: str = ""
    depth_error: str | None = None
    cost_factor: float | None = None
    cost_note: str = ""

    def failures(self) -> list:
        """One line per property that does not conform."""
        out = []
        if self.mutating:
            out.append(f"inputs mutated by {', '.join(self.mutating)}")
        if self.unrepeatable:
            out.append(f"a second gradients() call differs for {', '.join(self.unrepeatable)}")
        if self.max_depth is not None and self.max_depth < DEPTH_REQUIRED:
            out.append(f"the deepest chain that differentiates is {self.max_depth} "
                       f"({self.depth_error})")
        if self.cost_factor is not None and self.cost_factor > COST_LIMIT:
            out.append(f"the cost of a gradient grows {self.cost_factor:.2f}x per step "
                       f"(every path, not every node)")
        return out


@dataclass(frozen=True)
class Conformance:
    """An engine checked: per op, compositions, properties; `agree` is the verdict (every
    supported op ok or a convention, no wrong composition, every property conforms)."""

    engine: str
    source: str
    ops: dict
    compositions: Compositions
    properties: Properties
    agree: bool
    quick: bool = False
    seconds: float = 0.0

    def table(self, fmt: str = "simple") -> str:
        """Return the per-op table, the compositions, the properties and the verdict as text."""
        rows = [[r.name, r.checked if r.verdict != "unsupported" else "-",
                 r.wrong if r.verdict != "unsupported" else "-", _number(r.max_rel_error),
                 _first_wrong(r.first_wrong), _op_verdict(r)] for r in self.ops.values()]
        lines = [f"diffkit conformance: {self.engine} ({self.source})"
                 + (" [quick]" if self.quick else ""), "",
                 tabulate(rows, headers=["op", "checked", "wrong", "max rel err",
                                         "first wrong", "verdict"], tablefmt=fmt,
                          disable_numparse=True), ""]
        c = self.compositions
        line = f"compositions: {c.checked} checked, {c.wrong} wrong, {c.skipped} skipped " \
               f"(an op or parameter the engine lacks)"
        if c.wrong and c.explained:
            line += "; every wrong one uses an op found WRONG or mutating above"
        lines.append(line)
        for e in c.examples:
            lines.append(f"  {e['name']} at {_point(e['point'])}: {e['what']} expected "
                         f"{_number(e['expected'])}, got {_got(e['got'])}")
        p = self.properties
        depth = ("not measured" if p.max_depth is None else
                 f"{p.max_depth} ({p.depth_op} chain)"
                 + (f"; {p.depth_error}" if p.depth_error else ""))
        cost = ("not measured (" + p.cost_note + ")" if p.cost_factor is None else
                f"{p.cost_factor:.2f} per logistic-map step (about 1 for a tape, about 2 for "
                f"every path)")
        props = [
            ["inputs unchanged", "NO: " + ", ".join(p.mutating) + " mutates its input"
             if p.mutating else "yes"],
            ["repeatable", "NO: " + ", ".join(p.unrepeatable) if p.unrepeatable else "yes"],
            ["deepest chain", depth],
            ["cost factor", cost],
        ]
        lines += ["", tabulate(props, headers=["property", "measured"], tablefmt=fmt,
                               disable_numparse=True), "", self.summary()]
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: conforms, or what does not."""
        if self.agree:
            return f"{self.engine} conforms ({self.seconds:.1f} s)"
        failures = [f"{r.name} WRONG" for r in self.ops.values() if r.verdict == "WRONG"]
        if self.compositions.wrong:
            failures.append(f"{self.compositions.wrong} compositions wrong")
        failures += self.properties.failures()
        return f"{self.engine} does NOT conform: " + "; ".join(failures)

    def __str__(self):
        return self.table()

    def _repr_markdown_(self):
        return self.table("github")

    def to_dict(self) -> dict:
        """Return a strict-JSON-ready dict: engine, ops, compositions, properties, agree."""
        p, c = self.properties, self.compositions
        return _strict({
            "engine": self.engine,
            "source": self.source,
            "quick": self.quick,
            "ops": {r.name: {"verdict": r.verdict, "checked": r.checked, "wrong": r.wrong,
                             "max_rel_error": r.max_rel_error, "first_wrong": r.first_wrong,
                             "conventions": list(r.conventions),
                             "mutates_input": r.mutates or None, "repeatable": r.repeatable}
                    for r in self.ops.values()},
            "compositions": {"checked": c.checked, "wrong": c.wrong, "skipped": c.skipped,
                             "examples": list(c.examples), "explained": c.explained},
            "properties": {"mutates_inputs": bool(p.mutating), "mutating_ops": list(p.mutating),
                           "repeatable": not p.unrepeatable,
                           "unrepeatable_ops": list(p.unrepeatable), "max_depth": p.max_depth,
                           "depth_op": p.depth_op, "depth_error": p.depth_error,
                           "depth_required": DEPTH_REQUIRED, "cost_factor": p.cost_factor,
                           "cost_note": p.cost_note, "failures": p.failures()},
            "agree": bool(self.agree),
            "seconds": self.seconds,
        })

    def junit(self) -> str:
        """Return the result as JUnit XML: one test case per op, compositions and property."""
        suite = ElementTree.Element("testsuite", name=f"diffkit conformance {self.engine}")
        cases = []
        for r in self.ops.values():
            case = ElementTree.Element("testcase", classname="ops", name=r.name)
            if r.verdict == "unsupported":
                ElementTree.SubElement(case, "skipped", message="not in the adapter's OPS")
            elif r.verdict == "WRONG":
                ElementTree.SubElement(case, "failure", message=_first_wrong(r.first_wrong))
            cases.append(case)
        case = ElementTree.Element("testcase", classname="compositions", name="compositions")
        if self.compositions.wrong:
            ElementTree.SubElement(case, "failure",
                                   message=f"{self.compositions.wrong} wrong")
        cases.append(case)
        failures = self.properties.failures()
        for name, word in (("inputs unchanged", "mutated"), ("repeatable", "second"),
                           ("deepest chain", "chain"), ("cost factor", "cost")):
            case = ElementTree.Element("testcase", classname="properties", name=name)
            for failure in failures:
                if word in failure:
                    ElementTree.SubElement(case, "failure", message=failure)
            cases.append(case)
        suite.extend(cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
        suite.set("time", f"{self.seconds:.3f}")
        return ElementTree.tostring(suite, encoding="unicode")


def _strict(x):
    """x with every non-finite float replaced by None (strict JSON)."""
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _number(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_number(v) for v in x) + "]"
    return f"{x:.6g}"


def _got(x) -> str:
    return x if isinstance(x, str) else _number(x)


def _point(p) -> str:
    return "(" + ", ".join(_number(v) for v in p) + ")" if len(p) > 1 else _number(p[0])


def _first_wrong(w) -> str:
    if w is None:
        return "-"
    return f"{w['what']} at {_point(w['point'])}: expected {_number(w['expected'])}, " \
           f"got {_got(w['got'])}"


def _op_verdict(r: OpResult) -> str:
    if r.verdict != "convention":
        return r.verdict
    chosen = "; ".join(f"{c['what']} at {_point(c['point'])}: {_number(c['got'])}"
                       for c in r.conventions[:2])
    return f"convention ({chosen})"


# ---- one op at one point ----


@dataclass(frozen=True)
class _Outcome:
    """The engine's value and derivatives of one op or composition at one point, judged."""

    wrong: list  # (what, expected, got) per wrong entry or value, or the error
    conventions: list  # (what, got, [low, high])
    relative: float
    mutates: str
    repeatable: bool


def _run_engine(adapter, build, point, again=True):
    """(value, gradients, gradients of a second call (`again`, else the first's), mutated: ''
    / 'forward pass' / 'gradients') of the engine's output built by build(inputs) at point."""
    xs = [adapter.variable(v) for v in point]
    out = build(xs)
    got = float(adapter.value(out))
    mutated = "" if _same(_values(adapter, xs), point) else "forward pass"
    first = [float(g) for g in adapter.gradients(out, xs)]
    if not mutated and not _same(_values(adapter, xs), point):
        mutated = "gradients"
    second = [float(g) for g in adapter.gradients(out, xs)] if again else first
    return got, first, second, mutated


def _values(adapter, xs):
    return [float(adapter.value(x)) for x in xs]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y))
                                    for x, y in zip(a, b))


def _judged(adapter, build, point, names, function, expected_value, spread=0.0,
            again=True) -> _Outcome:
    """Run the engine at point and judge its value and derivatives against diffkit's
    reference of `function` (the same computation written with diffkit's primitives);
    `again`: call gradients twice, to see that the second call gives the same answer."""
    try:
        got, first, second, mutated = _run_engine(adapter, build, point, again)
    except Exception as error:  # the engine failed at a point where f has a value
        message = first_line(error)
        return _Outcome([("error", None, f"{type(error).__name__}: {message}"[:120])], [],
                        math.nan, "", True)
    ref = reference.compute(function, point, names)
    entries = accepted(ref)
    allowed = allowance(CLAIMED, entries, 0.0 if (ref.kinks or ref.alternatives) else spread)
    wrong, conventions, relative = [], [], 0.0
    value_allowed = (VALUE_TOLERANCE.atol + VALUE_TOLERANCE.rtol * abs(expected_value)
                     + FLOOR * EPS * abs(expected_value))
    if not (abs(got - expected_value) <= value_allowed or got == expected_value):
        wrong.append(("value", expected_value, got))
    for k, (entry, g) in enumerate(zip(entries, first)):
        what = f"d/d{names[k]}"
        verdict, error = judge(g, entry, float(allowed[k]))
        centre = (entry.low + entry.high) / 2 if entry.status == "kink" else entry.value
        if math.isfinite(error):
            rel = error / abs(centre) if centre else (0.0 if error == 0 else math.inf)
            relative = max(relative, rel)
        elif verdict == "WRONG":
            relative = math.inf
        if verdict == "WRONG":
            expected = [entry.low, entry.high] if entry.status == "kink" else entry.value
            wrong.append((what, expected, g))
        elif verdict == "convention":
            conventions.append((what, g, [entry.low, entry.high]))
    if len(first) != len(entries):
        wrong.append(("gradients", len(entries), f"{len(first)} values"))
    return _Outcome(wrong, conventions, relative, mutated, _same(first, second))


def _exact_value(prim, point, params) -> float:
    """The op's value at point from its SymPy counterpart at 30 digits."""
    exact = prim.sympy_impl(*(sympy.Float(v, 40) for v in point), **params)
    return float(sympy.N(exact, 30))


def check_op(adapter, name: str, quick: bool = False) -> OpResult:
    """Check the engine's op `name` alone at every point of `points(name)`.

    Example:
        >>> check_op(load("diffkit"), "relu", quick=True).verdict
        'convention'
    """
    adapter = load(adapter)
    if name not in adapter.ops:
        return OpResult(name, "unsupported")
    prim = PRIMITIVES[name]
    params = {**prim.parameters, **adapter.params.get(name, {})}
    op = adapter.ops[name]
    names = ("x", "y")[:SCALAR_OPS[name]]
    checked = wrong = 0
    relative, first_wrong, conventions = 0.0, None, []
    mutates, repeatable = "", True
    for number, (kind, point) in enumerate(points(name, quick)):
        checked += 1
        outcome = _judged(adapter, lambda xs: op(*xs), point, names,
                          lambda *a: prim(*a, **params), _exact_value(prim, point, params),
                          again=number == 0 or kind == "kink")
        relative = max(relative, outcome.relative)
        mutates = mutates or outcome.mutates
        repeatable = repeatable and outcome.repeatable
        if outcome.wrong:
            wrong += 1
            if first_wrong is None:
                what, expected, got = outcome.wrong[0]
                first_wrong = {"point": list(point), "kind": kind, "what": what,
                               "expected": expected, "got": got}
        for what, got, interval in outcome.conventions:
            conventions.append({"point": list(point), "what": what, "got": got,
                                "interval": interval})
    verdict = "WRONG" if wrong else ("convention" if conventions else "ok")
    return OpResult(name, verdict, checked, wrong, relative, first_wrong, tuple(conventions),
                    mutates, repeatable)


# ---- compositions: diffkit functions replayed in the engine ----


class _Unsupported(Exception):
    """A composition needs an op or parameter the engine lacks."""


def replayed(adapter: Adapter, tape, output: int):
    """Return build(inputs) that recomputes the tape's output with the engine's ops (a constant
    operand becomes a variable; x ** 2 becomes x * x for an engine without power)."""
    for entry in tape:
        if entry.primitive is None:
            continue
        name = entry.primitive.name
        if name == "power" and "power" not in adapter.ops and _squares(entry):
            name = "multiply"
        if name not in adapter.ops:
            raise _Unsupported(name)
        prim = entry.primitive
        mine = {**prim.parameters, **entry.params}
        engine = {**prim.parameters, **adapter.params.get(name, {})}
        if name in PRIMITIVES and mine != engine:
            raise _Unsupported(f"{name} with {mine}")

    def build(xs):
        nodes = list(xs) + [None] * (len(tape) - len(xs))
        for k in range(len(xs), len(tape)):
            entry = tape[k]
            parents = dict(entry.parents)
            operands = [nodes[parents[i]] if i in parents else adapter.variable(float(v))
                        for i, v in enumerate(entry.inputs)]
            name = entry.primitive.name
            if name == "power" and "power" not in adapter.ops:
                operands = [operands[0], operands[0]]
                name = "multiply"
            nodes[k] = adapter.ops[name](*operands)
        return nodes[output]

    return build


def _squares(entry) -> bool:
    return len(entry.parents) == 1 and entry.parents[0][0] == 0 and entry.inputs[1] == 2.0


@dataclass(frozen=True)
class _Case:
    name: str
    function: object
    point: tuple
    names: tuple


def _catalog_cases(quick: bool) -> list:
    from diffkit.experiments.catalog import catalog

    cases = [_Case(c.name, c.function, tuple(float(v) for v in c.point), tuple(c.variables))
             for c in catalog()]
    return cases[::3] if quick else cases


def _random_cases(ops: list, count: int) -> list:
    """Seeded random expressions of three variables built only from `ops` (each drawn until
    diffkit finds it finite, away from kinks, with derivatives below 1e6 at its point)."""
    rng = np.random.default_rng(SEED)
    unary, binary = corpus.split(ops)
    if not binary and not unary:
        return []
    cases = []
    for number in range(count):
        drawn = corpus.draw(rng, unary, binary)
        if drawn is not None:
            steps, point = drawn
            cases.append(_Case(f"random_{number}: {corpus.formula(steps)}",
                               corpus.function(steps), point, corpus.VARIABLES))
    return cases


def check_compositions(adapter, ops=None, quick: bool = False, wrong_ops=()) -> Compositions:
    """Replay the article's cases and seeded random expressions in the engine and judge them.

    Example:
        >>> check_compositions(load("diffkit"), quick=True).wrong
        0
    """
    adapter = load(adapter)
    supported = [n for n in (ops or SCALAR_OPS) if n in adapter.ops]
    count = RANDOM_EXPRESSIONS[1] if quick else RANDOM_EXPRESSIONS[0]
    cases = _catalog_cases(quick) + _random_cases(supported, count)
    checked = wrong = skipped = 0
    examples, explained = [], True
    for case in cases:
        tape = trace_tape(case.function, *case.point)
        used = {e.primitive.name for e in tape.entries if e.primitive is not None}
        try:
            if tape.output is None or not used <= set(supported) | {"power"}:
                raise _Unsupported("op")
            build = replayed(adapter, tape.entries, tape.output)
        except _Unsupported:
            skipped += 1
            continue
        checked += 1
        outcome = _judged(adapter, build, case.point, case.names, case.function,
                          float(tape.value), _spread(adapter, case), again=False)
        if outcome.wrong:
            wrong += 1
            explained = explained and bool(used & set(wrong_ops))
            if len(examples) < 5:
                what, expected, got = outcome.wrong[0]
                examples.append({"name": case.name, "point": list(case.point), "what": what,
                                 "expected": expected, "got": got, "ops": sorted(used)})
    return Compositions(checked, wrong, skipped, tuple(examples), explained)


def _spread(adapter, case):
    """The engine's rounding noise on a composition: the change of its gradient when the
    point moves by a few ulps (cancellation is noise, not an error); 0 where it cannot run."""
    rng = np.random.default_rng(SEED)
    base = None
    spread = 0.0
    for _ in range(3):
        point = case.point if base is None else tuple(
            v * (1 + rng.choice([-1.0, 1.0]) * NOISE_ULPS * EPS) for v in case.point)
        try:
            tape = trace_tape(case.function, *point)
            found = np.array(_run_engine(adapter, replayed(adapter, tape.entries, tape.output),
                                         point, again=False)[1])
        except Exception:
            return spread
        if base is None:
            base = found
        else:
            change = np.abs(found - base)
            spread = np.fmax(spread, np.where(np.isfinite(change), change, 0.0))
    return spread


# ---- properties: depth and cost ----


def deepest_chain(adapter, quick: bool = False, depths=None) -> tuple:
    """(deepest working chain of `depths` (default DEPTHS, QUICK_DEPTHS when quick) or 0, its
    op, the error at the first that fails or None): y = op(y) n times from x = 0.5, its
    gradient checked against diffkit's.

    Example:
        >>> deepest_chain(load("diffkit"), quick=True)[:2]
        (10000, 'negative')
    """
    adapter = load(adapter)
    name = next((n for n in DEPTH_OPS if n in adapter.ops), None)
    if name is None:
        return None, "", f"not measured: the engine has none of {', '.join(DEPTH_OPS)}"
    op, binary = adapter.ops[name], SCALAR_OPS[name] == 2
    prim = PRIMITIVES[name]
    constant = 0.0 if name == "add" else 1.0
    deepest = 0
    for depth in depths or (QUICK_DEPTHS if quick else DEPTHS):
        def chain(y, op=op, depth=depth, c=None):
            for _ in range(depth):
                y = op(y, c) if binary else op(y)
            return y

        try:
            x = adapter.variable(0.5)
            c = adapter.variable(constant) if binary else None
            out = chain(x, c=c)
            got = float(adapter.gradients(out, [x])[0])
        except Exception as error:  # RecursionError, MemoryError, the engine's own
            first = first_line(error)
            return deepest, name, f"{type(error).__name__} at depth {depth}: {first}"[:160]
        expected = float(grad(lambda v, depth=depth: chain(
            v, op=prim, depth=depth, c=constant))(0.5))
        if not abs(got - expected) <= 1e-9 * abs(expected) + 1e-12:
            return deepest, name, f"wrong gradient at depth {depth}: expected " \
                                  f"{expected:.6g}, got {got:.6g}"
        deepest = depth
    return deepest, name, None


def cost_factor(adapter, quick: bool = False) -> tuple:
    """(factor, note): how the work of one gradient grows per step of the logistic map
    l_(k+1) = 4 l_k (1 - l_k), where each step uses l_k twice: about 1 for a tape (linear in
    the steps), about 2 for an engine that walks every path. The work is the number of Python
    function calls gradients() makes (exact and repeatable); for an engine whose calls do not
    grow with the graph (its backward pass is compiled) it is the least time of several calls.
    The factor is 2 ** slope of log2(work) against the steps, by least squares. None when it
    cannot be measured.

    Example:
        >>> cost_factor(load("diffkit"), quick=True)[0] < 1.5
        True
    """
    adapter = load(adapter)
    ops = adapter.ops
    if "multiply" not in ops or "subtract" not in ops and not (
            "add" in ops and "negative" in ops):
        return None, "needs multiply, and subtract or add and negative"
    multiply = ops["multiply"]
    subtract = ops.get("subtract") or (lambda a, b: ops["add"](a, ops["negative"](b)))

    def graph(n):
        x = adapter.variable(0.3)
        four, one = adapter.variable(4.0), adapter.variable(1.0)
        out = x
        for _ in range(n - 1):
            out = multiply(multiply(four, out), subtract(one, out))
        return lambda: adapter.gradients(out, [x])

    longest = 24 if quick else 40
    try:
        calls = {}
        for n in range(2, longest + 1, 2):
            run = graph(n)
            run()  # warm: an engine's first call compiles (JAX), which is not the cost per step
            calls[n] = _calls(run)
            if calls[n] > COST_CALLS:
                break
        if calls[max(calls)] >= 4 * calls[2]:
            return _fitted(calls, 50, "Python calls")
        times = {}
        for n in range(2, longest + 1, 2):
            times[n] = _seconds(graph(n))
            if times[n] > 0.005:  # beyond, the graph outgrows the caches: time jumps
                break
        return _fitted(times, 2e-5, "time")
    except Exception as error:  # the engine fails on the map: not measured, said why
        first = first_line(error)
        return None, f"{type(error).__name__}: {first}"[:120]


def _fitted(work, floor, what):
    """(2 ** slope of log2(work) against the steps, note), over the last 8 counts above floor."""
    steps = [n for n, w in work.items() if w > floor][-8:]
    if len(steps) < 3:
        steps = list(work)[-3:]
    slope = np.polyfit(steps, [math.log2(work[n]) for n in steps], 1)[0]
    return round(float(2.0**slope), 2), f"{what} fitted over {steps[0]} to {steps[-1]} steps"


def _calls(run) -> int:
    """The number of Python function calls (and builtin calls) run() makes."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(previous)
    return count


def _seconds(run) -> float:
    """The least time of run() over a few calls (enough to pass 20 ms, at most 50)."""
    run()
    best, total, calls = math.inf, 0.0, 0
    while total < 0.02 and calls < 50:
        start = time.perf_counter()
        run()
        spent = time.perf_counter() - start
        best, total, calls = min(best, spent), total + spent, calls + 1
    return max(best, 1e-9)


# ---- the run ----


def run(adapter, ops=None, quick: bool = False, depths=None) -> Conformance:
    """Check an engine: every op alone, compositions, properties. adapter is a module, a .py
    file path, a module name or a shipped adapter's short name; `ops` restricts the op checks
    and compositions to those names; `quick` uses fewer points and shallower chains; `depths`
    replaces the chain lengths tried (default DEPTHS, QUICK_DEPTHS when quick).

    Example:
        >>> result = run("diffkit", ops=["tanh", "multiply"], quick=True)
        >>> result.agree, result.ops["tanh"].verdict
        (True, 'ok')
    """
    start = time.perf_counter()
    adapter = load(adapter)
    names = list(SCALAR_OPS)
    if ops is not None:
        ops = [ops] if isinstance(ops, str) else list(ops)
        unknown = [n for n in ops if n not in SCALAR_OPS]
        if unknown or not ops:
            raise InputError(f"--ops names {', '.join(unknown) or 'nothing'}; use some of "
                             f"{', '.join(SCALAR_OPS)}")
        names = [n for n in names if n in ops]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = {name: check_op(adapter, name, quick) for name in names}
        wrong_ops = {r.name for r in results.values() if r.verdict == "WRONG" or r.mutates}
        compositions = check_compositions(adapter, names, quick, wrong_ops)
        depth, depth_op, depth_error = deepest_chain(adapter, quick, depths)
        factor, note = cost_factor(adapter, quick)
    properties = Properties(
        tuple(r.name for r in results.values() if r.mutates),
        tuple(r.name for r in results.values() if not r.repeatable),
        depth, depth_op, depth_error, factor, note)
    agree = (all(r.verdict in ("ok", "convention", "unsupported") for r in results.values())
             and compositions.wrong == 0 and not properties.failures())
    return Conformance(adapter.name, adapter.source, results, compositions, properties, agree,
                       quick, time.perf_counter() - start)
