"""The pytest plugin, run through pytester: which files it collects, one item per case named by
`name`, pass/fail/xfail by `expect`, the comparison table in a failure, an invalid file as one
collection error naming file, line and field."""

import json

import pytest

from diffkit import ops

CASES = """\
[[case]]
name = "square"
expr = "x**2 + y"
at = { x = 1.5, y = 2.0 }

[[case]]
name = "relu_at_its_kink"
expr = "relu(x)"
at = { x = 0.0 }
expect = "kink"
"""


def _jsonl(*records):
    return "".join(json.dumps(r) + "\n" for r in records)


def test_case_files_are_collected_one_item_per_case_named_by_name(pytester):
    pytester.makefile(".diffkit.toml", test_mine=CASES)
    pytester.makefile(".diffkit.jsonl", test_more=_jsonl(
        {"name": "cube", "expr": "x**3", "at": {"x": 2}},
        {"name": "neuron", "expr": "sigmoid(w*x + b)", "at": {"x": 1, "w": 0, "b": 0}}))
    # neither test_*.diffkit.* nor a diffkit case file: left alone
    pytester.makefile(".diffkit.toml", cases=CASES)
    pytester.makefile(".toml", test_plain=CASES)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == 0
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["test_mine.diffkit.toml::square", "test_mine.diffkit.toml::relu_at_its_kink",
                   "test_more.diffkit.jsonl::cube", "test_more.diffkit.jsonl::neuron"]


def test_agree_and_kink_expectations_that_hold_pass(pytester):
    pytester.makefile(".diffkit.toml", test_mine=CASES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_cases_are_selected_by_the_diffkit_marker(pytester):
    pytester.makefile(".diffkit.toml", test_mine=CASES)
    pytester.makepyfile(test_other="def test_python():\n    assert True\n")
    result = pytester.runpytest("-m", "diffkit", "--strict-markers")
    result.assert_outcomes(passed=2, deselected=1)


def test_an_unmet_expectation_fails_with_file_line_and_the_comparison_table(pytester):
    # relu(x) at 0 is a kink, so a case expecting agreement there fails
    pytester.makefile(".diffkit.toml", test_mine="""\
[[case]]
name = "fine"
expr = "sin(x)"
at = { x = 0.5 }

[[case]]
name = "relu_expected_smooth"
expr = "relu(x)"
at = { x = 0.0 }
""")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "test_mine.diffkit.toml:6: case 'relu_expected_smooth': expected agree, verdict kink" \
        in text
    # the table: a row per method and the kink explained
    for row in ("reverse", "forward", "symbolic", "central", "complex_step"):
        result.stdout.re_match_lines([rf"^{row}\s"])
    assert "relu at its switching point" in text
    assert "Traceback" not in text


def test_a_met_disagreement_is_xfailed_and_one_that_agrees_fails(pytester, replace_rule):
    # sin's VJP made wrong (cos is the derivative, not sin): reverse mode now disagrees
    replace_rule(ops.sin, "vjp", 0, lambda g, ans, x: g * ops.sin(x))
    pytester.makefile(".diffkit.jsonl", test_mine=_jsonl(
        {"name": "known_wrong_sin", "expr": "sin(x)", "at": {"x": 0.5}, "expect": "disagree"},
        {"name": "sin_expected_right", "expr": "sin(x)", "at": {"x": 0.5}},
        {"name": "cos_was_fixed", "expr": "cos(x)", "at": {"x": 0.5}, "expect": "disagree"}))
    result = pytester.runpytest("-rxX")
    result.assert_outcomes(xfailed=1, failed=2)
    text = result.stdout.str()
    result.stdout.fnmatch_lines(["XFAIL test_mine.diffkit.jsonl::known_wrong_sin - disagrees "
                                 "as expected: reverse is wrong in d/d(x)*"])
    assert "case 'sin_expected_right': expected agree, verdict disagree" in text
    assert "case 'cos_was_fixed': expected disagree, verdict agree" in text
    assert "DISAGREE" in text  # the failing table's summary line


@pytest.mark.parametrize("name, content, where", [
    ("test_bad.diffkit.toml", CASES + '\n[[case]]\nname = "third"\nexpr = "x"\nat = { x = 1 }\n'
     'order = 3\n', ("test_bad.diffkit.toml:12", "'order'")),
    ("test_bad.diffkit.jsonl", _jsonl({"name": "a", "expr": "x", "at": {"x": 1}},
                                      {"name": "b", "expr": "x + y", "at": {"x": 1}}),
     ("test_bad.diffkit.jsonl:2", "'at'")),
    ("test_bad.diffkit.jsonl", '{"name": "a", "expr": "x", "at": {"x": 1}}\n{"name": \n',
     ("test_bad.diffkit.jsonl:2", "not valid JSON")),
])
def test_an_invalid_file_is_one_collection_error_naming_file_line_and_field(
        pytester, name, content, where):
    (pytester.path / name).write_text(content)
    pytester.makefile(".diffkit.toml", test_good=CASES)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    errors = [line for line in result.outlines if where[0] in line]
    assert len(errors) == 1 and where[1] in errors[0], text
    assert "Traceback" not in text and "passed" not in text  # nothing ran
