"""diagnose names the wrong rule, its inputs and the user's line; correct rules pass."""

import runpy
from pathlib import Path

import numpy as np
import pytest

import diffkit as dk
from diffkit.testing import assert_grads_agree, assert_rules_correct

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "leaky_relu_bug.py"


@pytest.fixture(scope="module")
def article_bug():
    return runpy.run_path(str(EXAMPLE))


def test_compare_flags_the_article_leaky_relu_bug(article_bug):
    result = dk.compare(article_bug["network"], *article_bug["POINT"])
    assert not result.agree
    assert not result.methods["reverse"].agree and not result.methods["forward"].agree
    assert result.methods["symbolic"].agree and result.methods["central"].agree
    # the correct derivative on the leaky side is alpha, the bug's is 1: off by a factor 100
    ratio = result.methods["reverse"].gradient[1] / result.methods["symbolic"].gradient[1]
    assert ratio == pytest.approx(1 / article_bug["ALPHA"])


def test_diagnose_names_the_primitive_and_its_line(article_bug):
    result = dk.diagnose(article_bug["network"], *article_bug["POINT"])
    wrong = result.first_wrong
    assert wrong is not None and wrong.op == "article_leaky_relu"
    source = EXAMPLE.read_text().splitlines()
    path, line = wrong.location.rsplit(":", 1)
    assert Path(path).resolve() == EXAMPLE
    assert "leaky_relu(w1 * x)" in source[int(line) - 1]
    assert wrong.expected == pytest.approx(article_bug["ALPHA"])
    assert wrong.got == pytest.approx(1.0)
    assert "article_leaky_relu" in str(result) and "wrong" in str(result)


def test_every_builtin_rule_passes_diagnose_on_a_mixed_graph():
    a = np.array([[0.3, -1.2, 0.8], [1.5, 0.2, -0.7]])

    def f(x, w):
        h = dk.tanh(x @ w) + dk.softplus(x[:, :2]) * dk.elu(w[0], 0.5)
        return dk.logsumexp(h, axis=1).sum() + dk.mean(dk.leaky_relu(h, 0.1) ** 2)

    result = dk.diagnose(f, a, np.array([[0.5, -0.4], [0.1, 0.9], [-0.6, 0.2]]))
    assert result.ok, str(result)
    assert result.applications > 8


def test_missing_rule_is_reported():
    cube = dk.primitive(lambda x: x**3, name="cube")
    with pytest.raises(dk.RuleError, match="cube has no VJP rule"):
        dk.grad(cube)(2.0)
    dk.defvjp(cube, lambda g, ans, x: 3 * g * x**2)
    assert dk.grad(cube)(2.0) == 12.0
    result = dk.diagnose(lambda x: cube(x), 2.0)
    assert [c.status for c in result.checks] == ["ok", "missing"]
    assert not result.ok


def test_testing_helpers_raise_with_the_table(article_bug):
    with pytest.raises(AssertionError, match="DISAGREE"):
        assert_grads_agree(article_bug["network"], *article_bug["POINT"])
    with pytest.raises(AssertionError, match="article_leaky_relu"):
        assert_rules_correct(article_bug["network"], *article_bug["POINT"])
    assert assert_grads_agree(lambda x: dk.silu(x) * dk.cos(x), 0.4, order=2).agree


def test_a_rule_that_raises_is_told_apart_from_a_missing_one():
    halve = dk.primitive(lambda x: x / 2, name="halve")
    dk.defvjp(halve, lambda g, ans, x: g / 2)
    dk.defjvp(halve, lambda t, ans, x: t.undefined_attribute)  # a bug in the rule itself
    result = dk.diagnose(lambda x: halve(x), 3.0)
    assert [c.status for c in result.checks] == ["ok", "raised"]
    assert "AttributeError" in result.checks[1].describe() and not result.ok
