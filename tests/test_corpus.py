"""diffkit.corpus: seeded random cases in the verify grammar, at interior points, byte-identical
for a seed; the committed case files (tests/test_corpus.diffkit.toml, written by hand, and
tests/test_random.diffkit.jsonl, written by `diffkit corpus --random 30 --seed 12 --out
tests/test_random.diffkit.jsonl`) are what they say they are."""

import ast
import json
import math
from argparse import Namespace
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy

from diffkit import cli, corpus
from diffkit.cases import evaluate, load
from diffkit.errors import InputError
from diffkit.expression import parse

TESTS = Path(__file__).parent
RANDOM_FILE = TESTS / "test_random.diffkit.jsonl"
RANDOM_ARGS = {"random": 30, "seed": 12}  # how RANDOM_FILE was made
# the verify grammar's operators, by the AST node Python's parser gives them
AST_OPERATORS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide",
                 ast.Pow: "power", ast.USub: "negative"}
SWITCHES = ("abs", "relu", "leaky_relu", "elu")  # kink where the argument is 0
DIGITS = 30


def _corpus(capsys, **args) -> str:
    status = corpus.run_corpus(Namespace(**{"out": None, "ops": None, **args}))
    assert status == 0
    return capsys.readouterr().out


def _records(text):
    return [json.loads(line) for line in text.splitlines()]


def _ops_used(text):
    """The ops of a grammar text, read by Python's own parser (not diffkit's)."""
    used = set()
    for node in ast.walk(ast.parse(text, mode="eval")):
        if isinstance(node, ast.Call):
            used.add(node.func.id)
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            used.add(AST_OPERATORS[type(node.op)])
    return used


def _at_digits(expression, at):
    """Evaluate a SymPy expression at the point in DIGITS-digit arithmetic."""
    values = {sympy.Symbol(n, real=True): sympy.Float(v, DIGITS) for n, v in at.items()}
    return sympy.N(expression.subs(values), DIGITS)


def test_the_same_seed_gives_byte_identical_output_and_another_seed_other_cases(capsys):
    first = _corpus(capsys, random=25, seed=7)
    assert _corpus(capsys, random=25, seed=7) == first
    other = _corpus(capsys, random=25, seed=8)
    assert {r["expr"] for r in _records(first)} != {r["expr"] for r in _records(other)}
    names = [r["name"] for r in _records(first)]
    assert len(names) == 25 == len(set(names))


@pytest.mark.parametrize("suffix", [".toml", ".jsonl"])
def test_out_writes_the_format_of_its_suffix_with_the_same_cases(tmp_path, capsys, suffix):
    out = tmp_path / f"cases{suffix}"
    assert corpus.run_corpus(Namespace(random=12, seed=3, ops=None, out=str(out))) == 0
    assert capsys.readouterr().out == ""
    printed = _records(_corpus(capsys, random=12, seed=3))
    assert [case.to_dict() for case in load(out)] == printed


def test_cases_are_grammar_expressions_of_their_ops_with_exactly_their_variables(capsys):
    grammar = set(corpus.GRAMMAR_OPS)
    for record in _records(_corpus(capsys, random=60, seed=1)):
        expression = parse(record["expr"])  # raises outside the grammar
        assert set(record["at"]) == set(expression.variables) <= {"x", "y", "z"}
        assert _ops_used(record["expr"]) <= grammar
        assert record["order"] == 1 and record["expect"] == "agree"
        assert all(round(v, 3) == v and -1.5 <= v <= 1.5 for v in record["at"].values())


def test_ops_restricts_the_ops_drawn(capsys):
    records = _records(_corpus(capsys, random=20, seed=2, ops="sin, multiply,subtract"))
    used = set().union(*(_ops_used(r["expr"]) for r in records))
    assert used == {"sin", "multiply", "subtract"}


@pytest.mark.parametrize("ops, named", [("sin,sine", "sine"), ("maximum", "maximum"),
                                        (",", "nothing")])
def test_unknown_or_non_grammar_ops_are_one_line_input_errors(capsys, ops, named):
    with pytest.raises(InputError) as error:
        corpus.run_corpus(Namespace(random=3, seed=0, ops=ops, out=None))
    message = str(error.value)
    assert named in message and "\n" not in message and "sin" in message
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("args, flag", [({"random": 0, "seed": 0}, "--random"),
                                        ({"random": 3, "seed": -5}, "--seed"),
                                        ({"random": 3, "seed": 0, "out": "c.csv"}, "--out")])
def test_bad_counts_seeds_and_suffixes_are_input_errors(capsys, args, flag):
    with pytest.raises(InputError, match=flag):
        corpus.run_corpus(Namespace(**{"ops": None, "out": None, **args}))


def test_points_are_interior_finite_and_moderate_by_sympy_at_30_digits(capsys):
    for record in _records(_corpus(capsys, random=150, seed=4)):
        at = record["at"]
        tree = ast.parse(record["expr"], mode="eval")
        for node in ast.walk(tree):
            calls = isinstance(node, ast.Call)
            if calls or isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Pow)):
                # each subexpression's value at the point, from its own text, by SymPy
                operands = node.args if calls else [node.left, node.right]
                values = [_at_digits(parse(ast.unparse(a)).to_sympy(), at) for a in operands]
                what = node.func.id if calls else type(node.op).__name__
                if what in SWITCHES:
                    assert abs(values[0]) >= corpus.MARGIN, (record, ast.unparse(node))
                if what in ("log", "sqrt", "Pow"):
                    assert values[0] >= corpus.MARGIN, (record, ast.unparse(node))
                if what == "Div":
                    assert abs(values[1]) >= corpus.MARGIN, (record, ast.unparse(node))
        f = parse(record["expr"]).to_sympy()
        value = _at_digits(f, at)
        assert value.is_finite and abs(value) < corpus.LIMIT
        for name in at:
            slope = _at_digits(sympy.diff(f, sympy.Symbol(name, real=True)), at)
            assert slope.is_finite and abs(slope) < corpus.LIMIT, (record, name)


def test_grammar_text_computes_what_its_program_computes():
    # every op, composed at random: the text read back by SymPy at 30 digits against the
    # program run by diffkit's primitives in floats
    rng = np.random.default_rng(11)
    unary, binary = corpus.split(corpus.GRAMMAR_OPS)
    checked = set()
    for _ in range(300):
        drawn = corpus.draw(rng, unary, binary)
        if drawn is None:
            continue
        steps, point = drawn
        checked |= {name for name, *_ in steps}
        text = corpus.grammar_text(steps)
        at = {n: point[corpus.VARIABLES.index(n)] for n in parse(text).variables}
        expected = _at_digits(parse(text).to_sympy(), at)
        got = corpus.function(steps)(*point)
        assert math.isclose(got, float(expected), rel_tol=1e-9, abs_tol=1e-12), (text, point)
    assert checked == set(corpus.GRAMMAR_OPS)


def test_every_case_of_a_corpus_reaches_agreement():
    cases = corpus.random_cases(60, 5)
    verdicts = {case.name: evaluate(case)["verdict"] for case in cases}
    assert set(verdicts.values()) == {"agree"}, verdicts


def test_the_committed_random_corpus_is_what_its_command_writes(capsys):
    argv = ["corpus", "--random", str(RANDOM_ARGS["random"]), "--seed", str(RANDOM_ARGS["seed"])]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == RANDOM_FILE.read_text()


def test_the_command_line_writes_a_case_file_or_refuses_in_one_line(tmp_path, capsys):
    out = tmp_path / "cases.toml"
    assert cli.main(["corpus", "--random", "4", "--seed", "9", "--out", str(out)]) == 0
    assert [c.to_dict() for c in load(out)] == _records(_corpus(capsys, random=4, seed=9))
    assert cli.main(["corpus", "--random", "4", "--seed", "9", "--ops", "sin,frobnicate"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "frobnicate" in captured.err


def test_the_sigmoid_neuron_case_has_the_articles_gradient():
    # f = 1/(1+exp(-(w*x+b))) at x=1, w=0, b=0: df/dw = x*s(0)*(1-s(0)) = 0.25 = df/db, df/dx = 0
    [case] = [c for c in load(TESTS / "test_corpus.diffkit.toml") if c.name == "sigmoid_neuron"]
    record = evaluate(case)
    assert record["verdict"] == "agree"
    half = mpmath.mpf(1) / 2
    expected = {"x": 0.0, "w": float(half * (1 - half)), "b": float(half * (1 - half))}
    for method in ("reverse", "forward", "symbolic"):
        assert record["gradient"][method] == pytest.approx(expected, abs=1e-15), method
