"""Seeded random expressions: straight-line programs over the primitive table, as conformance
composes them and as `diffkit corpus` writes them (verify-grammar cases at interior points)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from diffkit.cases import Case, dumps_jsonl, dumps_toml
from diffkit.errors import InputError
from diffkit.expression import parse
from diffkit.ops import PRIMITIVES
from diffkit.reverse import grad

VARIABLES = ("x", "y", "z")
ATTEMPTS = 200  # programs drawn per expression before giving up on it
LOW, HIGH = -1.5, 1.5  # each variable's range, rounded to DIGITS decimals
DIGITS = 3
LIMIT = 1e6  # a usable expression's value and gradient stay below this
MARGIN = 0.01  # a corpus point keeps every switch and domain edge at least this far away
# name -> differentiable inputs, for every elementwise primitive differentiable in all of them
# (parameters such as leaky_relu's alpha keep their defaults)
ARITY = {name: p.arity - len(p.parameters) for name, p in PRIMITIVES.items()
         if p.elementwise and p.vjp and all(r is not None for r in p.vjp)}
# the grammar writes these as operators; every other op of the grammar is a call by name
OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**",
             "negative": "-"}
GRAMMAR_OPS = tuple(n for n in ARITY if PRIMITIVES[n].grammar or n in OPERATORS)
# where an op's argument must not go, as a distance that MARGIN bounds from below
_EDGES = {
    "log": lambda x: x, "sqrt": lambda x: x, "tan": lambda x: abs(math.cos(x)),
    "divide": lambda x, y: abs(y), "power": lambda x, y: x,
}


def split(ops) -> tuple[list, list]:
    """Return (unary, binary): the names of `ops` by their number of differentiable inputs.

    Example:
        >>> split(["sin", "add", "leaky_relu"])
        (['sin', 'leaky_relu'], ['add'])
    """
    return [n for n in ops if ARITY[n] == 1], [n for n in ops if ARITY[n] == 2]


def program(rng, unary, binary) -> list:
    """Return a straight-line program: slots 0-2 are x, y, z; each step (op, slot[, slot]) adds
    one slot, the last is the output.

    Example:
        >>> program(np.random.default_rng(1), ["sin"], [])
        [('sin', 1), ('sin', 3), ('sin', 4)]
    """
    steps = []
    for _ in range(int(rng.integers(2, 6))):
        size = 3 + len(steps)
        use_binary = binary and (not unary or rng.random() < 0.5)
        name = str(rng.choice(binary if use_binary else unary))
        last = size - 1 if steps else int(rng.integers(0, 3))
        other = int(rng.integers(0, size))
        steps.append((name, last, other) if use_binary else (name, last))
    return steps


def function(program) -> object:
    """Return the program as f(x, y, z), built from diffkit's primitives (so traceable).

    Example:
        >>> function([("multiply", 0, 1), ("add", 3, 2)])(2.0, 3.0, 1.0)
        7.0
    """

    def run(x, y, z):
        slots = [x, y, z]
        for name, *operands in program:
            params = PRIMITIVES[name].parameters
            slots.append(PRIMITIVES[name](*(slots[i] for i in operands), **params))
        return slots[-1]

    return run


def formula(program) -> str:
    """Return the program in function notation, every op by its primitive name.

    Example:
        >>> formula([("multiply", 0, 1), ("sin", 3)])
        'sin(multiply(x, y))'
    """
    text = list(VARIABLES)
    for name, *operands in program:
        text.append(f"{name}({', '.join(text[i] for i in operands)})")
    return text[-1]


def grammar_text(program) -> str:
    """Return the program as text of `diffkit verify`'s grammar (operators where the grammar
    has them, a bracket around every compound operand).

    Example:
        >>> grammar_text([("multiply", 0, 1), ("negative", 3), ("power", 4, 2)])
        '(-(x * y)) ** z'
    """
    text, atomic = list(VARIABLES), [True] * len(VARIABLES)
    for name, *operands in program:
        if name not in GRAMMAR_OPS:
            raise InputError(f"{name} has no syntax in the verify grammar; use some of "
                             f"{', '.join(GRAMMAR_OPS)}")
        parts = [text[i] if atomic[i] else f"({text[i]})" for i in operands]
        if name == "negative":
            text.append(f"-{parts[0]}")
        elif name in OPERATORS:
            text.append(f"{parts[0]} {OPERATORS[name]} {parts[1]}")
        else:
            text.append(f"{name}({', '.join(text[i] for i in operands)})")
        atomic.append(name not in OPERATORS)
    return text[-1]


def usable(function, point) -> bool:
    """Return True where `function` is finite with value and gradient below LIMIT at `point`,
    and its gradient barely moves when the point does (no kink between them).

    Example:
        >>> usable(function([("log", 0)]), (0.5, 0.0, 0.0)), usable(function([("log", 0)]),
        ...                                                      (-0.5, 0.0, 0.0))
        (True, False)
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(function(*point))
            gradient = grad(function, (0, 1, 2))(*point)
            moved = grad(function, (0, 1, 2))(*(v * (1 + 1e-6) + 1e-6 for v in point))
        except Exception:
            return False
    g, h = np.array(gradient, dtype=float), np.array(moved, dtype=float)
    # finite, moderate, and no kink between the point and a nearby one
    return (math.isfinite(value) and abs(value) < LIMIT and np.all(np.isfinite(g))
            and np.all(np.abs(g) < LIMIT) and np.allclose(g, h, rtol=1e-3, atol=1e-3))


def interior(program, point, margin: float = MARGIN) -> bool:
    """Return True when every switch of the program (relu, abs, ...) has its argument at least
    `margin` from its kink and every log, sqrt, tan, divide and power is at least `margin` from
    the edge of its domain, at `point` (x, y, z).

    Example:
        >>> interior([("subtract", 0, 0), ("relu", 3)], (0.7, 0.0, 0.0))
        False
    """
    slots = [float(v) for v in point]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, *operands in program:
            args = [slots[i] for i in operands]
            switch = args[0] - args[1] if len(args) > 1 else args[0]  # maximum's kink is a tie
            if PRIMITIVES[name].kink and abs(switch) < margin:
                return False
            if name in _EDGES and not _EDGES[name](*args) >= margin:
                return False
            slots.append(float(PRIMITIVES[name](*args, **PRIMITIVES[name].parameters)))
    return True


def draw(rng, unary, binary, accept=None, attempts: int = ATTEMPTS):
    """Return (program, point) of the first of `attempts` random programs that is usable at its
    random point (and that `accept(program, point)` takes, if given), or None.

    Example:
        >>> draw(np.random.default_rng(0), ["exp"], [])
        ([('exp', 2), ('exp', 3)], (1.305, 0.948, -1.492))
    """
    for _ in range(attempts):
        steps = program(rng, unary, binary)
        point = tuple(round(float(v), DIGITS) for v in rng.uniform(LOW, HIGH, size=3))
        if usable(function(steps), point) and (accept is None or accept(steps, point)):
            return steps, point
    return None


def grammar_ops(ops=None) -> list:
    """Return the ops a corpus draws from: GRAMMAR_OPS, or those of `ops` (names), checked.

    Example:
        >>> grammar_ops(["sin", "multiply"])
        ['multiply', 'sin']
    """
    if ops is None:
        return list(GRAMMAR_OPS)
    unknown = [n for n in ops if n not in GRAMMAR_OPS]
    if unknown or not ops:
        outside = [n for n in unknown if n in ARITY]
        why = f" ({', '.join(outside)}: not in the verify grammar)" if outside else ""
        raise InputError(f"--ops names {', '.join(unknown) or 'nothing'}{why}; use some of "
                         f"{', '.join(GRAMMAR_OPS)}")
    return [n for n in GRAMMAR_OPS if n in ops]


def random_cases(count: int, seed: int, ops=None) -> list:
    """Return `count` cases (diffkit.cases.Case, order 1, expect agree) named random_SEED_K:
    seeded random expressions of x, y, z over `ops` (default: every op of the grammar) at points
    where each is finite, with value and gradient below LIMIT, and MARGIN away from kinks and
    domain edges. The same arguments give the same cases.

    Example:
        >>> [(c.name, c.expr, c.at) for c in random_cases(1, 0, ["exp"])]
        [('random_0_0', 'exp(exp(z))', {'z': -1.492})]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InputError(f"--random must be a whole number >= 1 (a case file holds at least "
                         f"one case), not {count}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be a whole number >= 0, not {seed}")
    unary, binary = split(grammar_ops(ops))
    rng = np.random.default_rng(seed)
    width = len(str(max(count - 1, 0)))
    cases = []
    for number in range(count):
        drawn = draw(rng, unary, binary, accept=interior)
        if drawn is None:
            raise InputError(f"no usable expression in {ATTEMPTS} tries over the ops "
                             f"{', '.join(unary + binary)}; add more ops to --ops")
        steps, point = drawn
        text = grammar_text(steps)
        at = {name: point[VARIABLES.index(name)] for name in parse(text).variables}
        cases.append(Case(f"random_{seed}_{number:0{width}d}", text, at))
    return cases


def run_corpus(args) -> int:
    """`diffkit corpus`: write args.random cases of seed args.seed over args.ops (comma-separated
    names or None) to args.out (.toml or .jsonl, by suffix) or, without it, JSON Lines to
    standard output. Returns the exit status, 0.
    """
    writers = {".toml": dumps_toml, ".jsonl": dumps_jsonl}
    out = None if args.out is None else Path(args.out)
    if out is not None and out.suffix not in writers:
        raise InputError(f"--out {args.out} must end in .toml or .jsonl (the case file format)")
    if out is not None and not out.parent.is_dir():
        raise InputError(f"--out {args.out} cannot be written: its directory does not exist")
    ops = None if args.ops is None else [n.strip() for n in args.ops.split(",") if n.strip()]
    cases = random_cases(args.random, args.seed, ops)
    text = writers[out.suffix if out is not None else ".jsonl"](cases)
    if out is None:
        print(text, end="")
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(f"--out {args.out} cannot be written ({error.strerror})") from None
    return 0
