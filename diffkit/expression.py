"""The safe parser: user text -> Expression, by a whitelist over Python's AST (never eval/sympify).

Owns the command line's grammar and limits (README, "Verify an expression") and the `--at` points.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import operator
import re
import warnings
from dataclasses import dataclass, field

from diffkit.errors import ExpressionError, InputError
from diffkit.ops import PRIMITIVES

MAX_LENGTH = 100_000
MAX_NESTING = 200  # open brackets plus a run of unary signs
MAX_TERM_TOKENS = 1_000  # per term between top-level + and -: keeps ast.parse's recursion shallow
MAX_EXACT_BITS = 100_000  # an exact power (int or SymPy rational) larger than this is refused

# The grammar's functions, from the table: those without parameters, then those with alpha.
UNARY_FUNCTIONS = tuple(n for n, p in PRIMITIVES.items() if p.grammar and not p.parameters)
ALPHA_FUNCTIONS = tuple(n for n, p in PRIMITIVES.items()
                        if p.grammar and set(p.parameters) == {"alpha"})
FUNCTIONS = UNARY_FUNCTIONS + ALPHA_FUNCTIONS
CONSTANTS = ("pi", "e")

_DECIMAL = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_TOKEN = re.compile(rf"(?P<space>\s+)|(?P<number>{_DECIMAL})|(?P<name>[A-Za-z_]\w*)|\*\*|.",
                    re.DOTALL | re.ASCII)
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e\t\n\r]")
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_REFUSED_OPERATORS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<",
                      ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
                      ast.Invert: "~"}
_REFUSED_NODES = {ast.Attribute: "attribute access is", ast.Subscript: "subscripts are",
                  ast.Compare: "comparisons are", ast.Tuple: "tuples are", ast.List: "lists are",
                  ast.Set: "sets are", ast.Dict: "dicts are", ast.NamedExpr: "walruses (:=) are",
                  ast.Starred: "starred expressions are"}
_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
           "**": operator.pow}


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its sorted variable names and a postfix program."""

    text: str
    variables: tuple[str, ...]
    program: tuple[tuple, ...] = field(repr=False, compare=False)

    def __call__(self, **values):
        """Return the value at keyword values (floats, arrays, complex, tracers, SymPy).

        Example:
            >>> parse("x * y + 1")(x=2.0, y=3.0)
            7.0
        """
        missing = [name for name in self.variables if name not in values]
        extra = sorted(set(values) - set(self.variables))
        if missing or extra:
            raise InputError(f"give exactly the variables {', '.join(self.variables) or '(none)'}"
                             f" of {_shown(self.text)}; missing: {', '.join(missing) or 'none'}"
                             f"; unexpected: {', '.join(extra) or 'none'}")
        return _run(self.program, values, lambda value, text: value, {"pi": math.pi, "e": math.e})

    @property
    def function(self):
        """The expression as `f(*args)`, arguments in `variables` order (for `diffkit.grad`).

        Example:
            >>> parse("y - x").function(1.0, 5.0)
            4.0
        """
        names = self.variables

        def function(*args):
            if len(args) != len(names):
                raise InputError(f"{_shown(self.text)} takes {len(names)} arguments "
                                 f"({', '.join(names)}), got {len(args)}")
            return self(**dict(zip(names, args, strict=True)))

        function.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.POSITIONAL_ONLY) for name in names])
        return function

    def to_sympy(self):
        """Return the exact SymPy expression: real symbols, decimal literals as rationals.

        Example:
            >>> parse("0.5*x**2").to_sympy()
            x**2/2
        """
        import sympy

        symbols = {name: sympy.Symbol(name, real=True) for name in self.variables}
        literal = lambda value, text: (
            sympy.Integer(value) if type(value) is int else sympy.Rational(text))
        return _run(self.program, symbols, literal, {"pi": sympy.pi, "e": sympy.E})


def parse(text: str) -> Expression:
    """Return the Expression for `text`; raises ExpressionError (one line) outside the grammar.

    Example:
        >>> parse("sigmoid(w*x + b)").variables
        ('b', 'w', 'x')
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression has {len(text):,} characters; "
                              f"the limit is {MAX_LENGTH:,}")
    bad = _NOT_PRINTABLE.search(text)
    if bad:  # before ast.parse, which would fold look-alikes such as 'ｘ' into 'x' (NFKC)
        kind = "non-ASCII" if ord(bad.group()) > 127 else "control"
        raise ExpressionError(f"{kind} character {bad.group()!r} (U+{ord(bad.group()):04X}) at "
                              f"column {bad.start() + 1}; write the expression in plain ASCII")
    flat = text.translate({9: 32, 10: 32, 13: 32})
    terms, joins = _split_terms(flat)
    compiler = _Compiler(flat)
    compiler.term(*terms[0])
    for (start, end), (symbol, column) in zip(terms[1:], joins, strict=True):
        compiler.term(start, end)
        compiler.binary(symbol, column)
    return Expression(text, tuple(sorted(compiler.variables)), tuple(compiler.program))


def parse_point(text: str) -> dict[str, float]:
    """Return the point of `--at NAME=VALUE[,NAME=VALUE...]`; a value is a number, pi or e.

    Example:
        >>> parse_point("x=1.5, y=-2e-3, t=pi")
        {'x': 1.5, 'y': -0.002, 't': 3.141592653589793}
    """
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        raise ExpressionError(f"--at must be text of at most {MAX_LENGTH:,} characters")
    point = {}
    for item in text.split(","):
        name, equals, value = (part.strip() for part in item.partition("="))
        if not (name and equals and value):
            shown = _shown(item.strip()) if item.strip() else "(empty)"
            raise ExpressionError(f"malformed --at item {shown}; write NAME=VALUE[,NAME=VALUE]")
        problem = "is a constant" if name in CONSTANTS else _name_problem(name)
        if problem:
            raise ExpressionError(f"--at name {_shown(name)} {problem}; use a variable name")
        if name in point:
            raise ExpressionError(f"--at gives {name!r} twice; give each variable one value")
        unsigned = value[1:] if value[0] in "+-" else value
        sign = -1.0 if value[0] == "-" else 1.0
        if unsigned in CONSTANTS:
            point[name] = sign * (math.pi if unsigned == "pi" else math.e)
        elif re.fullmatch(_DECIMAL, unsigned) and math.isfinite(float(unsigned)):
            point[name] = sign * float(unsigned)
        else:
            infinite = unsigned.lower() in ("nan", "inf", "infinity")
            infinite = infinite or re.fullmatch(_DECIMAL, unsigned)
            raise ExpressionError(f"--at value {_shown(value)} of {name!r} is "
                                  f"{'not finite' if infinite else 'not a number'}")
    return point


def _name_problem(name: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return "is not an ASCII identifier"
    if name.startswith("_"):
        return "starts with '_'"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in FUNCTIONS:
        return f"is a function (call it as {name}(...))"
    return None


def _split_terms(flat: str) -> tuple[list[tuple[int, int]], list[tuple[str, int]]]:
    """Spans of the terms between top-level binary + and -, and those signs with their columns.

    Checks brackets and nesting first, so no deep or unbalanced text reaches ast.parse.
    """
    terms, joins, openers = [], [], []
    start = end = None
    tokens = signs = 0
    after_operand = False
    for match in _TOKEN.finditer(flat):
        kind, token, column = match.lastgroup, match.group(), match.start() + 1
        if kind == "space":
            continue
        if kind == "name" and keyword.iskeyword(token):
            raise ExpressionError(f"{token!r} at column {column} is a Python keyword, "
                                  "not part of the grammar")
        if token in "'\"#\\":
            what = {"#": "comments are", "\\": "backslashes are"}.get(token, "strings are")
            raise ExpressionError(f"{what} not allowed (column {column})")
        if token in "+-" and after_operand and not openers:
            terms.append((start, end))
            joins.append((token, column))
            start, tokens, after_operand = None, 0, False
            continue
        if token in "([{":
            openers.append((token, column))
        elif token in ")]}":
            if not openers:
                raise ExpressionError(f"unmatched {token!r} at column {column}")
            openers.pop()
        signs = signs + 1 if token in "+-" else 0
        if len(openers) + signs > MAX_NESTING:
            raise ExpressionError(f"nesting deeper than {MAX_NESTING} (brackets and signs) "
                                  f"at column {column}")
        tokens += 1
        if tokens > MAX_TERM_TOKENS:
            raise ExpressionError(f"the term at column {start + 1} has more than "
                                  f"{MAX_TERM_TOKENS} tokens; only top-level sums may be longer")
        start = match.start() if start is None else start
        end = match.end()
        after_operand = kind in ("number", "name") or token in ")]}"
    if openers:
        raise ExpressionError(f"{openers[-1][0]!r} at column {openers[-1][1]} is never closed")
    if start is None and joins:
        raise ExpressionError(f"{joins[-1][0]!r} at column {joins[-1][1]} has no right operand")
    if start is None:
        raise ExpressionError("the expression is empty; write one such as 'x**2 + 1'")
    terms.append((start, end))
    return terms, joins


class _Compiler:
    """Turns whitelisted AST nodes into a postfix program, folding constants to check them."""

    def __init__(self, flat: str):
        self.flat = flat
        self.program = []
        self.variables = set()
        self.facts = []  # per stack slot: (float value or None, first variable or None)

    def term(self, start: int, end: int) -> None:
        try:
            with warnings.catch_warnings():  # "invalid hexadecimal literal" and such: errors
                warnings.simplefilter("error")
                tree = ast.parse(self.flat[start:end], mode="eval")
        except SyntaxError as error:
            column = start + (error.offset or 1)
            raise ExpressionError(f"{error.msg} at column {column}".replace("\n", " ")) from None
        except (ValueError, RecursionError, MemoryError):
            raise ExpressionError(f"the term at column {start + 1} is too deeply nested") from None
        pending = [(tree.body, False)]
        while pending:
            node, ready = pending.pop()
            column = start + node.col_offset + 1
            if ready and isinstance(node, ast.UnaryOp):
                value, variable = self.facts.pop()
                self.program.append(("negate",))
                self.facts.append((None if value is None else -value, variable))
            elif ready and isinstance(node, ast.BinOp):
                symbol = _OPERATORS[type(node.op)]
                self.binary(symbol, self.flat.find(symbol, start + node.left.end_col_offset) + 1)
            elif ready:
                self.call(node.func.id, len(node.args) + len(node.keywords), column)
            elif isinstance(node, ast.Constant):
                self.number(node.value, self.flat[column - 1:start + node.end_col_offset], column)
            elif isinstance(node, ast.Name):
                self.name(node.id, column)
            elif isinstance(node, ast.UnaryOp) and type(node.op) in (ast.USub, ast.UAdd):
                if isinstance(node.op, ast.USub):  # unary plus changes nothing
                    pending.append((node, True))
                pending.append((node.operand, False))
            elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
                pending.extend([(node, True), (node.right, False), (node.left, False)])
            elif isinstance(node, ast.Call):
                arguments = _call_arguments(node, column)
                pending.append((node, True))
                pending.extend((argument, False) for argument in reversed(arguments))
            else:
                raise ExpressionError(_refusal(node, column, self.flat, start))

    def number(self, value, text: str, column: int) -> None:
        if isinstance(value, complex):
            raise ExpressionError(f"complex numbers are not allowed (column {column})")
        if type(value) not in (int, float):
            raise ExpressionError(f"{_shown(text)} at column {column} is not allowed")
        if not re.fullmatch(_DECIMAL, text):
            raise ExpressionError(f"{_shown(text)} at column {column} is not allowed; "
                                  "write numbers in decimal, such as 12, 0.5 or 1e-3")
        try:
            folded = float(value)
        except OverflowError:  # an int literal beyond the float range
            folded = math.inf
        if not math.isfinite(folded):
            raise ExpressionError(f"the number {_shown(text)} at column {column} "
                                  "is not a finite float")
        self.program.append(("number", value, text))
        self.facts.append((folded, None))

    def name(self, name: str, column: int) -> None:
        if name in CONSTANTS:
            self.program.append(("constant", name))
            self.facts.append((math.pi if name == "pi" else math.e, None))
            return
        problem = _name_problem(name)
        if problem:
            raise ExpressionError(f"name {_shown(name)} at column {column} {problem}")
        self.variables.add(name)
        self.program.append(("variable", name))
        self.facts.append((None, name))

    def binary(self, symbol: str, column: int) -> None:
        right, right_variable = self.facts.pop()
        left, left_variable = self.facts.pop()
        value = None
        if left is not None and right is not None:
            value = _fold(symbol, left, right, column)
        self.program.append(("binary", symbol, column))
        self.facts.append((value, left_variable or right_variable))

    def call(self, name: str, count: int, column: int) -> None:
        facts = self.facts[-count:]
        del self.facts[-count:]
        if count == 2 and facts[1][1] is not None:
            raise ExpressionError(f"alpha of {name}() at column {column} must be a constant, "
                                  f"but it uses the variable {facts[1][1]!r}")
        self.program.append(("call", name, count))
        self.facts.append((None, facts[0][1]))


def _call_arguments(node: ast.Call, column: int) -> list[ast.expr]:
    allowed = ", ".join(FUNCTIONS)
    if not isinstance(node.func, ast.Name):
        raise ExpressionError(f"only named functions may be called (column {column}); "
                              f"allowed: {allowed}")
    name = node.func.id
    if name not in FUNCTIONS:
        what = "a constant, not a function" if name in CONSTANTS else "an unknown function"
        raise ExpressionError(f"{_shown(name)} at column {column} is {what}; allowed: {allowed}")
    for argument in node.keywords:
        if argument.arg != "alpha" or name in UNARY_FUNCTIONS:
            label = "**" if argument.arg is None else argument.arg + "="
            raise ExpressionError(f"keyword argument {label!r} of {name}() at column {column} "
                                  "is not allowed; only leaky_relu and elu take alpha=")
    if any(isinstance(argument, ast.Starred) for argument in node.args):
        raise ExpressionError(f"starred arguments are not allowed (column {column})")
    count = len(node.args) + len(node.keywords)
    if name in UNARY_FUNCTIONS and count != 1:
        raise ExpressionError(f"{name}() at column {column} takes one argument, got {count}")
    if name in ALPHA_FUNCTIONS and (count not in (1, 2) or len(node.args) != 1 and node.keywords):
        raise ExpressionError(f"{name}() at column {column} takes x and an optional alpha, "
                              f"as in {name}(x, alpha=0.5)")
    return node.args + [argument.value for argument in node.keywords]


def _refusal(node: ast.AST, column: int, flat: str, start: int) -> str:
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        symbol = _REFUSED_OPERATORS.get(type(node.op), type(node.op).__name__)
        if isinstance(node, ast.BinOp):
            column = flat.find(symbol, start + node.left.end_col_offset) + 1
        return f"operator {symbol!r} is not allowed at column {column}"
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        while isinstance(node.value, (ast.Attribute, ast.Subscript)):  # report the leftmost
            node = node.value
        symbol = "." if isinstance(node, ast.Attribute) else "["
        column = flat.find(symbol, start + node.value.end_col_offset) + 1
    what = _REFUSED_NODES.get(type(node), f"{type(node).__name__!r} is")
    return f"{what} not allowed at column {column}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _fold(symbol: str, left: float, right: float, column: int) -> float:
    """The float value of a constant operation; overflow and undefined results are refused."""
    try:
        value = math.pow(left, right) if symbol == "**" else _BINARY[symbol](left, right)
    except OverflowError:
        value = math.inf
    except (ZeroDivisionError, ValueError):
        raise ExpressionError(f"the constant {symbol!r} at column {column} is undefined "
                              "(division by zero or a bad power)") from None
    if not math.isfinite(value):
        raise ExpressionError(f"the constant {symbol!r} at column {column} overflows")
    return value


def _exact_bits(value) -> int | None:
    """Bit length of an exact number (int or SymPy rational); None for anything else."""
    if type(value) is int:
        return abs(value).bit_length()
    if getattr(value, "is_Rational", False) is True:
        return max(abs(value.p).bit_length(), value.q.bit_length())
    return None


def _run(program, values, literal, constants):
    """Evaluate a postfix program on an explicit stack with diffkit ops."""
    from diffkit import ops

    # diffkit's primitives, not Python's operators: 1.0/0.0 is inf here, not ZeroDivisionError
    arithmetic = {"+": ops.add, "-": ops.subtract, "*": ops.multiply, "/": ops.divide,
                  "**": ops.power}
    stack = []
    for instruction in program:
        kind = instruction[0]
        if kind == "number":
            stack.append(literal(instruction[1], instruction[2]))
        elif kind == "constant":
            stack.append(constants[instruction[1]])
        elif kind == "variable":
            stack.append(values[instruction[1]])
        elif kind == "negate":
            stack.append(-stack.pop())
        elif kind == "binary":
            right = stack.pop()
            left = stack.pop()
            bits = _exact_bits(left)
            # exact int or rational powers grow without bound: (0*x + 10)**10**10 in SymPy
            if instruction[1] == "**" and bits and _exact_bits(right) is not None:
                if (bits - 1) * abs(right) > MAX_EXACT_BITS:
                    raise ExpressionError(f"the power at column {instruction[2]} is too large "
                                          f"to compute exactly (over {MAX_EXACT_BITS:,} bits)")
            stack.append(arithmetic[instruction[1]](left, right))
        else:
            arguments = stack[-instruction[2]:]
            del stack[-instruction[2]:]
            stack.append(getattr(ops, instruction[1])(*arguments))
    return stack.pop()
