"""Case files: the schema read from TOML and JSON Lines, every invalid file refused with its file,
line, case and field, exact round trips, and the result record of one case."""

import json
import math
import random
import struct

import pytest
import sympy

from diffkit.cases import Case, CaseFileError, dumps_jsonl, dumps_toml, evaluate, load, loads
from diffkit.cli import main

GOOD_TOML = """\
# a comment before the first case
[[case]]
name = "sigmoid"
expr = "1/(1+exp(-(w*x+b)))"
at = { x = 1.5, w = -0.5, b = 0.25 }

[[case]]   # a comment after the header
name = "kink"
expr = "relu(x)"
expect = "kink"

[case.at]
x = 0

[[case]]
name = "hessian"
expr = "x**3*y"
at = {x = 2, y = -1e-3}
order = 2
rtol = 1e-6
atol = 0.0
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_is_read_with_its_lines_and_defaults(tmp_path):
    path = write(tmp_path, "cases.toml", GOOD_TOML)
    cases = load(path)
    assert [c.name for c in cases] == ["sigmoid", "kink", "hessian"]
    lines = GOOD_TOML.splitlines()
    # each case's line is its [[case]] header, counted from 1
    assert [lines[c.line - 1].split("#")[0].strip() for c in cases] == ["[[case]]"] * 3
    assert [c.line for c in cases] == [2, 7, 15]
    assert cases[0].at == {"x": 1.5, "w": -0.5, "b": 0.25}
    assert all(type(v) is float for c in cases for v in c.at.values())
    assert (cases[0].order, cases[0].expect, cases[0].rtol, cases[0].atol) == (1, "agree",
                                                                               None, None)
    assert cases[1].at == {"x": 0.0} and cases[1].expect == "kink"
    assert (cases[2].order, cases[2].rtol, cases[2].atol) == (2, 1e-6, 0.0)
    assert all(c.source == str(path) for c in cases)


def test_a_jsonl_file_skips_blank_lines_and_counts_them(tmp_path):
    text = ('\n{"name": "a", "expr": "x*y", "at": {"x": 1, "y": 2}}\n\n'
            '  \n{"name": "b", "expr": "sin(x)", "at": {"x": -0.5}, "expect": "disagree"}\n')
    cases = load(write(tmp_path, "c.jsonl", text))
    assert [(c.name, c.line, c.expect) for c in cases] == [("a", 2, "agree"),
                                                           ("b", 5, "disagree")]
    assert cases[0].at == {"x": 1.0, "y": 2.0}


# (the case's text after its header, the field named, a phrase of the reason)
TOML_ERRORS = [
    ('name = "c"\nexpr = "x*y"\nat = { x = 1 }', "at", "no value for y"),
    ('name = "c"\nexpr = "x"\nat = { x = 1, z = 2 }', "at", "names z"),
    ('name = "c"\nexpr = "x"\nat = { x = nan }', "at", "finite"),
    ('name = "c"\nexpr = "x"\nat = { x = inf }', "at", "finite"),
    ('name = "c"\nexpr = "x"\nat = { x = "1" }', "at", "finite number"),
    ('name = "c"\nexpr = "x"\nat = { x = true }', "at", "finite number"),
    ('name = "c"\nexpr = "x"\nat = 3', "at", "table"),
    ('name = "c"\nexpr = "x +"\nat = { x = 1 }', "expr", "operand"),
    ('name = "c"\nexpr = "__import__(\'os\')"\nat = { x = 1 }', "expr", ""),
    ('name = "c"\nexpr = "2*pi"\nat = {}', "expr", "no variables"),
    ('name = "c"\nexpr = 3\nat = { x = 1 }', "expr", "string"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\norder = 3', "order", "1 or 2"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\norder = 1.0', "order", "1 or 2"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\nexpect = "pass"', "expect", "agree, kink"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\nrtol = -1e-3', "rtol", ">= 0"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\natol = nan', "atol", ">= 0"),
    ('name = "c"\nexpr = "x"\nat = { x = 1 }\ntolerance = 1', "tolerance", "unknown field"),
    ('name = "c"\nexpr = "x"', "at", "missing"),
    ('name = ""\nexpr = "x"\nat = { x = 1 }', "name", "non-empty"),
]


@pytest.mark.parametrize("body, field, reason", TOML_ERRORS)
def test_an_invalid_toml_case_names_file_line_case_and_field(tmp_path, body, field, reason):
    good = '[[case]]\nname = "first"\nexpr = "x"\nat = { x = 1 }\n\n'
    path = write(tmp_path, "bad.toml", good + "[[case]]\n" + body + "\n")
    with pytest.raises(CaseFileError) as caught:
        load(path)
    message = str(caught.value)
    label = "case 'c'" if 'name = "c"' in body else "case #2"
    assert message.startswith(f"{path}:6: {label}: field '{field}': ")
    assert reason in message and "\n" not in message


JSONL_ERRORS = [
    ('{"name": "c", "expr": "x", "at": {"x": NaN}}', "NaN is not a finite number"),
    ('{"name": "c", "expr": "x", "at": {"x": 1e999}}', "field 'at'"),
    ('{"name": "c", "expr": "x", "at": {"x": 1}, "expr": "y"}', "appears twice"),
    ('{"name": "c", "expr": "x", "at": {"x": 1}', "not valid JSON"),
    ('["c", "x"]', "case #2: a case is a table"),
    ('{"name": "c", "expr": "x", "at": {"x": 1}, "extra": 1}', "field 'extra': unknown"),
    ('{"name": "first", "expr": "x", "at": {"x": 1}}', "field 'name': already used at line 1"),
]


@pytest.mark.parametrize("row, reason", JSONL_ERRORS)
def test_an_invalid_jsonl_line_names_file_and_line(tmp_path, row, reason):
    good = '{"name": "first", "expr": "x", "at": {"x": 1}}\n\n'
    path = write(tmp_path, "bad.jsonl", good + row + "\n")
    with pytest.raises(CaseFileError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ") and reason in message and "\n" not in message


def test_unusable_files_are_refused_whole(tmp_path):
    for name, text, reason in [
        ("empty.toml", "# nothing\n", "no cases"),
        ("top.toml", 'title = "x"\n[[case]]\nname="c"\nexpr="x"\nat={x=1}\n', "top-level"),
        ("table.toml", '[case]\nname="c"\nexpr="x"\nat={x=1}\n', "array of tables"),
        ("broken.toml", '[[case]]\nname = "c" expr\n', "not valid TOML"),
        ("cases.yaml", "- name: c\n", ".toml or .jsonl"),
    ]:
        with pytest.raises(CaseFileError, match=reason):
            load(write(tmp_path, name, text))
    with pytest.raises(CaseFileError, match="cannot be read"):
        load(tmp_path / "missing.toml")
    with pytest.raises(CaseFileError, match="broken.toml:2: not valid TOML"):
        load(tmp_path / "broken.toml")


def test_the_command_line_refuses_an_invalid_file_before_running_anything(tmp_path, capsys):
    path = write(tmp_path, "bad.toml", GOOD_TOML + '\n[[case]]\nname = "kink"\nexpr = "x"\n'
                 'at = {x = 1}\n')
    out_file = tmp_path / "results.jsonl"
    status = main(["verify", "--file", str(path), "--out", str(out_file)])
    out, err = capsys.readouterr()
    header = path.read_text().splitlines().index("[[case]]", 20) + 1  # the fourth header
    assert status == 2 and out == "" and not out_file.exists()
    assert err == (f"diffkit verify: error: {path}:{header}: case 'kink': field 'name': "
                   f"already used at line 7; names must be unique\n")


def _bits(x):
    return struct.pack("<d", x)


def test_writers_round_trip_every_float_bit_for_bit():
    rng = random.Random(12)
    specials = [0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, 0.1,
                1 / 3, 1e-5, 1e16, 123456789.0]
    values = specials + [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
                         for _ in range(300)]
    values = [v for v in values if math.isfinite(v)]
    cases = [Case(f"case {k} \"q\" \\ é", "x*y", {"x": v, "y": values[-k - 1]}, order=1 + k % 2,
                  expect=("agree", "kink", "disagree")[k % 3],
                  rtol=abs(v) if k % 4 == 0 else None, atol=1e-300 if k % 5 == 0 else None)
             for k, v in enumerate(values)]
    for text, kind in [(dumps_toml(cases), "toml"), (dumps_jsonl(cases), "jsonl")]:
        back = loads(text, "<round trip>", kind)
        assert back == cases
        for original, read in zip(cases, back):
            assert [_bits(v) for v in read.at.values()] == [_bits(v)
                                                            for v in original.at.values()]
            if original.rtol is not None:
                assert _bits(read.rtol) == _bits(original.rtol)


def test_evaluate_sigmoid_against_its_closed_form():
    x, w, b = 1.5, -0.5, 0.25
    record = evaluate(Case("s", "1/(1+exp(-(w*x+b)))", {"x": x, "w": w, "b": b}))
    s = 1 / (1 + math.exp(-(w * x + b)))
    expected = {"x": s * (1 - s) * w, "w": s * (1 - s) * x, "b": s * (1 - s)}
    assert record["verdict"] == "agree" and record["met"] is True and record["errors"] == []
    assert record["value"] == pytest.approx(s, rel=1e-15)
    for method in ("reverse", "forward", "symbolic", "central", "complex_step"):
        for name, value in expected.items():
            assert record["gradient"][method][name] == pytest.approx(value, rel=1e-7)
    json.dumps(record, allow_nan=False)  # strict JSON: raises on NaN or a NumPy type
    assert "reverse" in record["table"] and "hessian" not in record


def test_evaluate_a_kink_and_a_wrong_expectation():
    kink = evaluate(Case("k", "relu(x)", {"x": 0.0}, expect="kink"))
    assert (kink["verdict"], kink["met"]) == ("kink", True)
    assert "not differentiable here" in kink["table"]
    smooth = evaluate(Case("s", "relu(x)", {"x": 0.5}, expect="kink"))
    assert (smooth["verdict"], smooth["met"]) == ("agree", False)
    assert smooth["gradient"]["reverse"] == {"x": 1.0}


def test_evaluate_with_zero_tolerance_blames_central_differences():
    # central differences carry a truncation error of ~1e-15 here; rtol = atol = 0 forbids it
    record = evaluate(Case("z", "exp(x)*sin(x)", {"x": 1.3}, expect="disagree", rtol=0.0,
                           atol=0.0))
    exact = math.exp(1.3) * (math.sin(1.3) + math.cos(1.3))
    assert record["gradient"]["reverse"]["x"] == pytest.approx(exact, rel=1e-15)
    assert record["gradient"]["central"]["x"] != exact
    assert (record["verdict"], record["met"]) == ("disagree", True)
    assert record["errors"] == ["central is wrong in d/d(x)"]


def test_evaluate_order_two_gives_the_hessian_of_sympy():
    x, y = sympy.symbols("x y")
    f = x**3 * sympy.sin(y)
    record = evaluate(Case("h", "x**3*sin(y)", {"x": 2.0, "y": -0.7}, order=2))
    exact = sympy.hessian(f, (x, y)).subs({x: 2, y: sympy.Rational(-7, 10)}).evalf(30)
    assert record["verdict"] == "agree"
    for method in ("reverse", "forward", "symbolic"):
        for i in range(2):
            for j in range(2):
                assert record["hessian"][method][i][j] == pytest.approx(float(exact[i, j]),
                                                                        rel=1e-12)
