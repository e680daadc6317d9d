"""Tests of the safe parser: grammar, precedence, evaluation, SymPy export, limits, refusals."""

import ast
import keyword
import math

import numpy as np
import pytest
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

import diffkit
from diffkit.errors import ExpressionError, InputError
from diffkit.expression import (
    CONSTANTS,
    FUNCTIONS,
    MAX_LENGTH,
    MAX_NESTING,
    Expression,
    parse,
    parse_point,
)

X, Y, Z = sympy.symbols("x y z", real=True)


def _sigmoid(v):
    return 0.5 * (1.0 + math.tanh(v / 2.0))


# ---- precedence and evaluation on floats ----

@pytest.mark.parametrize(("text", "values", "expected"), [
    ("-x**2", {"x": 3.0}, -9.0),
    ("(-x)**2", {"x": 3.0}, 9.0),
    ("-2**2", {}, -4),
    ("2**3**2", {}, 512),
    ("(2**3)**2", {}, 64),
    ("2**-1", {}, 0.5),
    ("x**-y**2", {"x": 2.0, "y": 1.5}, 2.0 ** -(1.5**2)),
    ("x/y/z", {"x": 8.0, "y": 2.0, "z": 4.0}, 1.0),
    ("x-y-z", {"x": 8.0, "y": 2.0, "z": 4.0}, 2.0),
    ("x - -y", {"x": 1.0, "y": 2.0}, 3.0),
    ("+x - +y", {"x": 1.0, "y": 2.0}, -1.0),
    ("x*-y", {"x": 3.0, "y": 2.0}, -6.0),
    ("x + y*z**2", {"x": 1.0, "y": 2.0, "z": 3.0}, 19.0),
    ("-x*y", {"x": 3.0, "y": 2.0}, -6.0),
    ("--x", {"x": 3.0}, 3.0),
    ("1e-3 + .5 + 2.5E+2 + 7.", {}, 257.501),
    ("pi * e", {}, math.pi * math.e),
    ("\tx *\n y ", {"x": 2.0, "y": 4.0}, 8.0),
])
def test_precedence_follows_python(text, values, expected):
    assert parse(text)(**values) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("text", "reference"), [
    ("exp(x)", math.exp),
    ("log(x)", math.log),
    ("sqrt(x)", math.sqrt),
    ("sin(x)", math.sin),
    ("cos(x)", math.cos),
    ("tan(x)", math.tan),
    ("tanh(x)", math.tanh),
    ("sinh(x)", math.sinh),
    ("cosh(x)", math.cosh),
    ("abs(x - 1)", lambda v: abs(v - 1)),
    ("sigmoid(-x)", lambda v: _sigmoid(-v)),
    ("relu(x) + relu(-x)", lambda v: max(v, 0.0) + max(-v, 0.0)),
    ("softplus(x)", lambda v: math.log1p(math.exp(v))),
    ("silu(x)", lambda v: v * _sigmoid(v)),
    ("leaky_relu(-x)", lambda v: -0.01 * v),
    ("leaky_relu(-x, 0.2)", lambda v: -0.2 * v),
    ("leaky_relu(-x, alpha=2**-2)", lambda v: -0.25 * v),
    ("elu(-x)", lambda v: math.expm1(-v)),
    ("elu(-x, alpha=0.5) + elu(x, 3)", lambda v: 0.5 * math.expm1(-v) + v),
    ("1/(1 + exp(-(2*x - 1)))", lambda v: 1 / (1 + math.exp(-(2 * v - 1)))),
])
@pytest.mark.parametrize("at", [0.3, 1.7])
def test_evaluation_matches_python(text, reference, at):
    assert parse(text)(x=at) == pytest.approx(reference(at), rel=1e-12, abs=1e-15)


def test_variables_are_sorted_and_exclude_constants_and_functions():
    expression = parse("w*x + b + pi*e + exp(z)")
    assert expression.variables == ("b", "w", "x", "z")
    assert parse("pi + 2").variables == ()
    assert parse("x + x") == parse("x + x")


def test_evaluation_on_arrays_complex_and_sympy():
    expression = parse("x*y + exp(x)")
    got = expression(x=np.array([1.0, 2.0]), y=np.array([3.0, 4.0]))
    np.testing.assert_allclose(got, [3 + math.e, 8 + math.exp(2)], rtol=1e-15)
    step = expression(x=1.0 + 1e-20j, y=3.0)
    assert step.imag / 1e-20 == pytest.approx(3 + math.e, rel=1e-15)
    assert expression(x=X, y=Y) == X * Y + sympy.exp(X)


def test_function_is_positional_in_variable_order_and_differentiable():
    expression = parse("y*sin(x) + x**2")
    assert expression.function(0.5, 2.0) == pytest.approx(2.0 * math.sin(0.5) + 0.25)
    dx, dy = diffkit.grad(expression.function, argnums=(0, 1))(0.5, 2.0)
    assert dx == pytest.approx(2.0 * math.cos(0.5) + 1.0, rel=1e-12)
    assert dy == pytest.approx(math.sin(0.5), rel=1e-12)
    with pytest.raises(InputError, match="takes 2 arguments"):
        expression.function(1.0)


@pytest.mark.parametrize(("values", "named"), [
    ({"x": 1.0}, "missing: y"),
    ({"x": 1.0, "y": 2.0, "z": 3.0}, "unexpected: z"),
])
def test_call_with_wrong_names_is_refused(values, named):
    with pytest.raises(InputError, match=named):
        parse("x + y")(**values)


# ---- SymPy export ----

@pytest.mark.parametrize(("text", "expected"), [
    ("0.1*x + 0.2", sympy.Rational(1, 10) * X + sympy.Rational(1, 5)),
    ("1e-3*x**2/3", X**2 / 3000),
    ("2**3**2 + 2.5E+1", sympy.Integer(537)),
    ("-x**2 + pi*e", -X**2 + sympy.pi * sympy.E),
    ("exp(-x)*sin(y) - log(z)/sqrt(x)",
     sympy.exp(-X) * sympy.sin(Y) - sympy.log(Z) / sympy.sqrt(X)),
    ("tanh(x) + sinh(y)*cosh(z) + tan(x)", sympy.tanh(X) + sympy.sinh(Y) * sympy.cosh(Z)
     + sympy.tan(X)),
    ("sigmoid(x)", 1 / (1 + sympy.exp(-X))),
    ("softplus(x) + silu(y)", sympy.log(1 + sympy.exp(X)) + Y / (1 + sympy.exp(-Y))),
])
def test_to_sympy_equals_hand_built(text, expected):
    got = parse(text).to_sympy()
    assert sympy.simplify(got - expected) == 0
    assert all(symbol.is_real for symbol in got.free_symbols)


def test_to_sympy_keeps_decimals_exact():
    assert parse("0.1").to_sympy() == sympy.Rational(1, 10)
    assert parse("x*0.3").to_sympy() == sympy.Rational(3, 10) * X
    assert parse("1.5e-2").to_sympy() == sympy.Rational(3, 200)


@pytest.mark.parametrize("at", [sympy.Rational(-3, 2), sympy.Rational(5, 4)])
def test_to_sympy_of_kinked_functions_matches_floats(at):
    expression = parse("abs(x) + relu(x) + leaky_relu(x, alpha=0.2) + elu(x, 0.5)")
    exact = expression.to_sympy().subs(X, at)
    assert float(exact) == pytest.approx(expression(x=float(at)), rel=1e-12)


# ---- refusals: every one an ExpressionError with a one-line message ----

HOSTILE = [
    ("().__class__.__bases__", "attribute access is not allowed at column 3"),
    ("__import__(os)", "'__import__' at column 1 is an unknown function"),
    ("lambda: 1", "'lambda' at column 1 is a Python keyword"),
    ("[x for x in y]", "'for' at column 4 is a Python keyword"),
    ("x.real", "attribute access is not allowed at column 2"),
    ("1 .real", "attribute access is not allowed at column 3"),
    ("x.y[0].z", "attribute access is not allowed at column 2"),
    ("x[0].y", "subscripts are not allowed at column 2"),
    ("x[0]", "subscripts are not allowed at column 2"),
    ('f"{x}"', "strings are not allowed"),
    ("'a'", "strings are not allowed (column 1)"),
    ("1j", "complex numbers are not allowed"),
    ("x if y else z", "'if' at column 3 is a Python keyword"),
    ("not x", "'not'"),
    ("x and y", "'and'"),
    ("True", "'True'"),
    ("x < y", "comparisons are not allowed"),
    ("x, y", "tuples are not allowed"),
    ("{x}", "sets are not allowed"),
    ("{x: 1}", "dicts are not allowed"),
    ("(y := x)", "walruses (:=) are not allowed"),
    ("...", "'...' at column 1 is not allowed"),
    ("foo(x)", "'foo' at column 1 is an unknown function; allowed: exp, log"),
    ("print(x)", "unknown function"),
    ("pi(x)", "'pi' at column 1 is a constant, not a function"),
    ("sin(x)(y)", "only named functions may be called"),
    ("exp(x, y)", "exp() at column 1 takes one argument, got 2"),
    ("exp()", "takes one argument, got 0"),
    ("exp(x, alpha=1)", "keyword argument 'alpha='"),
    ("leaky_relu(x, beta=1)", "keyword argument 'beta=' of leaky_relu() at column 1"),
    ("leaky_relu(x, 1, alpha=2)", "takes x and an optional alpha"),
    ("elu(alpha=2)", "takes x and an optional alpha"),
    ("exp(*x)", "starred arguments are not allowed"),
    ("exp(**x)", "keyword argument '**'"),
    ("leaky_relu(x, x)", "alpha of leaky_relu() at column 1 must be a constant"),
    ("elu(x, alpha=2*y)", "uses the variable 'y'"),
    ("_x + 1", "name '_x' at column 1 starts with '_'"),
    ("import", "'import' at column 1 is a Python keyword"),
    ("exp + 1", "name 'exp' at column 1 is a function"),
    ("x*relu", "name 'relu' at column 3 is a function"),
    ("", "the expression is empty"),
    (" \t ", "the expression is empty"),
    ("(x", "'(' at column 1 is never closed"),
    ("x)", "unmatched ')' at column 2"),
    ("x +", "'+' at column 3 has no right operand"),
    ("x y", "invalid syntax at column 3"),
    ("x = 1", "at column 3"),
    ("x; y", "at column 2"),
    ("x // y", "operator '//' is not allowed at column 3"),
    ("x % y", "operator '%' is not allowed"),
    ("x @ y", "operator '@' is not allowed"),
    ("~x", "operator '~' is not allowed"),
    ("x # comment", "comments are not allowed"),
    ("x \\", "backslashes are not allowed"),
    ("0x10", "write numbers in decimal"),
    ("1_000", "write numbers in decimal"),
    ("0x1for x", "invalid hexadecimal literal"),
    ("10**10**10", "the constant '**' at column 3 overflows"),
    ("1e999", "the number '1e999' at column 1 is not a finite float"),
    ("1" * 400, "is not a finite float"),
    ("10**308 + 10**308", "the constant '+' at column 9 overflows"),
    ("2.0**1024 * x", "overflows"),
    ("1/0", "the constant '/' at column 2 is undefined"),
    ("(-8)**(1/3)", "undefined"),
    ("\uff58", "non-ASCII character '\uff58' (U+FF58) at column 1"),
    ("x + \u0445", "non-ASCII character '\u0445' (U+0445) at column 5"),
    ("x\x00", "control character '\\x00' (U+0000) at column 2"),
    ("(" * 10_000 + "x" + ")" * 10_000, f"nesting deeper than {MAX_NESTING}"),
    ("-" * 10_000 + "x", f"nesting deeper than {MAX_NESTING}"),
    ("x" * 130_000, "the expression has 130,000 characters; the limit is 100,000"),
    ("*".join(["x"] * 3000), "only top-level sums may be longer"),
    ("2*(" + "+".join(["x"] * 3000) + ")", "only top-level sums may be longer"),
]


@pytest.mark.parametrize(("text", "fragment"), HOSTILE, ids=[text[:24] for text, _ in HOSTILE])
def test_hostile_input_is_refused_in_one_line(text, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 300


def test_import_os_system_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(ExpressionError, match="strings are not allowed"):
        parse(f"__import__('os').system('touch {target}')")
    assert not target.exists()


@pytest.mark.parametrize("text", ["(" * 10_000 + "x" + ")" * 10_000, "-" * 10_000 + "x",
                                  "x" * 130_000, "*".join(["x"] * 3000), "x + \u0445"])
def test_deep_long_or_non_ascii_text_never_reaches_ast_parse(text, monkeypatch):
    seen = []
    monkeypatch.setattr(ast, "parse", lambda *args, **kwargs: seen.append(args))
    with pytest.raises(ExpressionError):
        parse(text)
    assert seen == []


def test_names_pi_and_e_are_constants_not_variables():
    assert parse("pi")() == math.pi
    assert parse("e**2")() == pytest.approx(math.e**2)
    assert parse("pi + x").variables == ("x",)


def test_refused_input_is_not_a_python_value():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(42)


# ---- limits ----

def test_nesting_limit_is_exact():
    assert parse("(" * MAX_NESTING + "x" + ")" * MAX_NESTING)(x=2.0) == 2.0
    assert parse("-" * MAX_NESTING + "x")(x=2.0) == 2.0
    with pytest.raises(ExpressionError, match="nesting deeper"):
        parse("(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1))


def test_longest_flat_sum_parses_and_evaluates_iteratively():
    text = "+".join(["x"] * 50_000)
    text += " " * (MAX_LENGTH - len(text))
    assert len(text) == MAX_LENGTH
    expression = parse(text)
    assert expression(x=1.5) == 75_000.0
    assert parse("-".join(["x"] * 30_000))(x=1.0) == -29_998.0
    with pytest.raises(ExpressionError, match="limit is 100,000"):
        parse(text + "x")


def test_exact_power_too_large_is_refused_when_evaluated():
    expression = parse("(0*x + 10)**10**10")
    with pytest.raises(ExpressionError, match="too large to compute exactly"):
        expression.to_sympy()
    with pytest.raises(ExpressionError, match="too large to compute exactly"):
        expression(x=10)
    assert parse("(0*x + 2)**1000").to_sympy() == sympy.Integer(2) ** 1000


# ---- --at points ----

def test_parse_point_accepts_numbers_and_constants():
    point = parse_point(" x = 1 , y=-2.5e3,z=+.5, t=-pi,u=e ")
    assert point == {"x": 1.0, "y": -2500.0, "z": 0.5, "t": -math.pi, "u": math.e}
    assert all(type(value) is float for value in point.values())


@pytest.mark.parametrize(("text", "fragment"), [
    ("x=1,x=2", "gives 'x' twice"),
    ("x=nan", "is not finite"),
    ("x=-inf", "is not finite"),
    ("x=1e999", "is not finite"),
    ("x=abc", "'abc' of 'x' is not a number"),
    ("x=--1", "is not a number"),
    ("x=0x10", "is not a number"),
    ("x=\uff11", "is not a number"),
    ("x=1=2", "is not a number"),
    ("x", "malformed --at item 'x'"),
    ("x=", "malformed"),
    ("=1", "malformed"),
    ("x=1,", "malformed --at item (empty)"),
    ("pi=1", "'pi' is a constant"),
    ("exp=1", "'exp' is a function"),
    ("_a=1", "starts with '_'"),
    ("if=1", "is a Python keyword"),
    ("x y=1", "is not an ASCII identifier"),
    ("\u0445=1", "is not an ASCII identifier"),
])
def test_parse_point_refusals(text, fragment):
    with pytest.raises(ExpressionError) as caught:
        parse_point(text)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda name: name not in FUNCTIONS + CONSTANTS and not keyword.iskeyword(name))


@given(st.dictionaries(NAMES, st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_parse_point_round_trips_repr(point):
    assert parse_point(",".join(f"{name}={value!r}" for name, value in point.items())) == point


# ---- random expressions: minimal parentheses, Python's precedence ----

ATOM, POWER, UNARY, PRODUCT, SUM = 5, 4, 3, 2, 1
BINARY = {"+": (SUM, lambda a, b: a + b), "-": (SUM, lambda a, b: a - b),
          "*": (PRODUCT, lambda a, b: a * b), "/": (PRODUCT, lambda a, b: a / b),
          "**": (POWER, lambda a, b: a**b)}
CALLS = {
    "sin({})": math.sin, "cos({})": math.cos, "tanh({})": math.tanh, "abs({})": abs,
    "relu({})": lambda v: v if v > 0 else 0.0,
    "leaky_relu({}, alpha=0.1)": lambda v: v if v > 0 else 0.1 * v,
    "elu({}, 0.5)": lambda v: v if v > 0 else 0.5 * math.expm1(v),
}


def _leaf(text, value):
    return text, ATOM, lambda point: point.get(text, value)


def _wrap(node, parenthesize):
    return f"({node[0]})" if parenthesize else node[0]


def _binary(left, symbol, right, space):
    level, apply = BINARY[symbol]
    if symbol == "**":  # right-associative; its right side may be a unary minus
        texts = _wrap(left, left[1] <= POWER), _wrap(right, right[1] < UNARY)
    else:
        texts = _wrap(left, left[1] < level), _wrap(right, right[1] <= level)
    text = f"{texts[0]}{space}{symbol}{space}{texts[1]}"
    return text, level, lambda point: apply(left[2](point), right[2](point))


def _negate(node):
    return "-" + _wrap(node, node[1] < UNARY), UNARY, lambda point: -node[2](point)


def _call(template, node):
    return template.format(node[0]), ATOM, lambda point: CALLS[template](node[2](point))


VARIABLES = st.sampled_from(["x", "y"]).map(lambda name: _leaf(name, None))
POSITIVE = st.one_of(VARIABLES, st.integers(1, 9).map(lambda k: _leaf(str(k), k)),
                     st.sampled_from([("pi", math.pi), ("e", math.e)]).map(lambda c: _leaf(*c)))
LEAVES = st.one_of(POSITIVE, st.integers(0, 9).map(lambda k: _leaf(str(k), k)),
                   st.floats(1e-6, 1e6).map(lambda v: _leaf(repr(v), v)))
EXPONENTS = st.sampled_from([_leaf("2", 2), _leaf("3", 3), _negate(_leaf("1", 1))])
SPACES = st.sampled_from(["", " "])


def _extend(children):
    return st.one_of(
        children.map(_negate),
        st.builds(_binary, children, st.sampled_from(["+", "-", "*"]), children, SPACES),
        st.builds(_binary, children, st.just("/"), POSITIVE, SPACES),
        st.builds(_binary, children, st.just("**"), EXPONENTS, SPACES),
        st.builds(_call, st.sampled_from(sorted(CALLS)), children),
    )


@given(st.recursive(LEAVES, _extend, max_leaves=12),
       st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.booleans())
def test_random_expressions_evaluate_like_python(node, x, y, negative):
    point = {"x": -x if negative else x, "y": y}
    try:
        reference = node[2](point)
    except (ZeroDivisionError, OverflowError):
        reference = math.nan
    assume(isinstance(reference, (int, float)) and math.isfinite(reference))
    expression = parse(node[0])
    values = {name: point[name] for name in expression.variables}
    assert math.isclose(expression(**values), reference, rel_tol=1e-9, abs_tol=1e-9)


@given(st.text(alphabet="xyep0123456789.+-*/(), =_[]'~<ajlh", max_size=40) | st.text(max_size=20))
def test_arbitrary_text_parses_or_raises_expression_error(text):
    try:
        expression = parse(text)
    except ExpressionError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(expression, Expression)
        assert all(name in text and name.isascii() and name[0] != "_"
                   for name in expression.variables)
