"""The agreement study's claims against independent references: edge points by their rules,
the reference's one-sided derivatives at exact kinks against hand-derived ones, single units
at +-700 and deep chains against mpmath recurrences, and the page's and headline's counts
against the numbers they sum up."""

import copy
import json
import re

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit.experiments import agreement
from diffkit.experiments.catalog import ACTIVATIONS, catalog, get
from diffkit.report.pages import TIMING_MARK, headline, render
from diffkit.report.writer import to_json

STUDIED = ("chain_relu_10", "chain_leaky_relu_10", "chain_elu_10", "chain_sigmoid_1",
           "chain_softplus_1", "chain_silu_1", "leaky_relu_wide", "logistic_map_8")
ALPHA = mpmath.mpf("0.01")  # leaky_relu's default slope on negative inputs


@pytest.fixture(scope="module")
def study():
    """The study on a few cases, every edge rule, one random point each; as JSON holds it."""
    return json.loads(to_json(agreement.run(seeds=1, workers=1, only=STUDIED)))


@pytest.fixture(scope="module")
def deep():
    return json.loads(to_json(agreement.run(workers=1, only=agreement.DEEP_CHAINS)))


def _edge(result, case, rule):
    found = [p for p in result["edges"]["points"] if p["case"] == case and p["rule"] == rule]
    assert len(found) == 1, (case, rule)
    return found[0]


# ---- independent mpmath activations: value and derivative ----

def _sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


# Derivatives written without cancellation (1 - sigmoid(700) is 0 at any working precision
# below ~300 digits): sigmoid' = s(z) s(-z), tanh' = sech^2.
MP = {
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * _sigmoid(-z)),
    "tanh": (mpmath.tanh, lambda z: mpmath.sech(z) ** 2),
    "softplus": (lambda z: mpmath.log(1 + mpmath.exp(z)), _sigmoid),
    "silu": (lambda z: z * _sigmoid(z),
             lambda z: _sigmoid(z) + z * _sigmoid(z) * _sigmoid(-z)),
    "elu": (lambda z: z if z > 0 else mpmath.exp(z) - 1,
            lambda z: 1 if z > 0 else mpmath.exp(z)),
    "relu": (lambda z: z if z > 0 else mpmath.mpf(0), lambda z: 1 if z > 0 else 0),
    "leaky_relu": (lambda z: z if z > 0 else ALPHA * z, lambda z: 1 if z > 0 else ALPHA),
}


def _chain_value_and_gradient(activation, point, dps=60):
    """C = (3 - y_n)^2, y_0 = x, y_i = f(w_i y_(i-1)) and dC/d(x, w_1..w_n), by a forward
    recurrence on the tangent vector dy_i/d(x, w) in mpmath."""
    f, df = MP[activation]
    n = len(point)
    with mpmath.workdps(dps):
        x, *weights = (mpmath.mpf(p) for p in point)
        y = x
        dy = [mpmath.mpf(1)] + [mpmath.mpf(0)] * (n - 1)
        for i, w in enumerate(weights, start=1):
            z = w * y
            dz = [w * d for d in dy]
            dz[i] += y
            slope = df(z)
            y = f(z)
            dy = [slope * d for d in dz]
        value = (3 - y) ** 2
        return value, [-2 * (3 - y) * d for d in dy]


def _close(actual, truth, rtol=1e-15):
    truth = float(truth)
    return actual == truth or abs(actual - truth) <= rtol * abs(truth)


# ---- the rules ----

@pytest.mark.parametrize("case", agreement.edge_cases(), ids=lambda c: c.name)
def test_edge_points_follow_their_rules(case):
    points = agreement.edge_points(case)
    by_rule = dict(points)
    n = len(case.variables)
    assert len(by_rule) == len(points) and len({p for _, p in points}) == len(points)
    assert set(by_rule) <= set(agreement.EDGE_RULES)
    assert all(len(p) == n for _, p in points)
    assert by_rule["zero"] == (0.0,) * n
    assert by_rule["+20"] == (20.0,) * n and by_rule["-20"] == (-20.0,) * n
    if "input 0" in by_rule:
        assert by_rule["input 0"] == (0.0,) + case.point[1:]
    else:  # an earlier rule gave the same point
        assert (0.0,) + case.point[1:] in {p for _, p in points}
    single = case.name == "sigmoid_neuron" or case.name.endswith("_1")
    assert ("unit +700" in by_rule) == single and ("unit -700" in by_rule) == single
    if single:  # the unit's input w * x (+ b) at +-700
        for rule, sign in (("unit +700", 1), ("unit -700", -1)):
            p = by_rule[rule]
            assert p[0] * p[1] + sum(p[2:]) == sign * 700.0


@pytest.mark.parametrize("case", [c for c in agreement.edge_cases()
                                  if "base 0" in dict(agreement.edge_points(c))],
                         ids=lambda c: c.name)
def test_the_base_0_rule_makes_y_exactly_3(case):
    point = dict(agreement.edge_points(case))["base 0"]
    if case.name == "leaky_relu_wide":
        x, w = point[0], np.array(point[1:])
        first = np.maximum(w[:3] * x, 0.01 * w[:3] * x)
        pre = w[3:12].reshape(3, 3) @ first
        y = w[12:] @ np.maximum(pre, 0.01 * pre)
    else:
        activation = case.name[len("chain_"):].rsplit("_", 1)[0]
        y = mpmath.mpf(point[0])
        for w in point[1:]:
            y = MP[activation][0](w * y)
    assert y == 3


def test_only_the_logistic_map_has_a_domain_edge_in_the_catalog():
    """The page says: no case applies log, sqrt or a fractional power, and the one division
    is sigmoid_neuron's."""
    dividing = set()
    for case in catalog():
        count = len(case.variables)
        tape = dk.trace(case.function, *case.point).entries
        names = {entry[0].name for entry in tape[count:]}
        assert not names & {"log", "sqrt", "log1p"}, case.name
        for prim, vals, *_ in tape[count:]:
            if prim.name == "power":
                assert float(vals[1]).is_integer(), case.name
        if "divide" in names:
            dividing.add(case.name)
        rules = {rule for rule, _ in agreement.edge_points(case)}
        assert ("near 0" in rules) == case.name.startswith("logistic_map_")
    assert dividing == {"sigmoid_neuron"}


# ---- the reference's verdicts at edge points, against derivations by hand ----

@pytest.mark.parametrize("name,left_x", [("chain_relu_10", 0.0),
                                         ("chain_leaky_relu_10", -6 * 0.01**10),
                                         ("chain_elu_10", -6.0)])
def test_a_chain_with_its_input_at_the_kink(study, name, left_x):
    """x = 0, weights 1: right of 0, y_n = x and C = (3 - x)^2, so dC/dx = -6; left of 0,
    y_n = alpha^n x (relu: 0; leaky: 0.01^10; elu: slope e^0 = 1). Along any weight the
    pre-activations stay 0 (they multiply x = 0): derivative 0 on both sides."""
    edge = _edge(study, name, "input 0")
    n = len(edge["point"])
    assert edge["point"] == [0.0] + [1.0] * (n - 1) and edge["value"] == 9.0
    assert len(edge["kinks"]) == 1
    kink = edge["kinks"][0]
    assert kink["right"][0] == -6.0 and _close(kink["left"][0], left_x)
    assert kink["left"][1:] == [0.0] * (n - 1) and kink["right"][1:] == [0.0] * (n - 1)
    differentiable = left_x == -6.0
    assert kink["differentiable"] is differentiable
    assert edge["status"]["kink"] == (0 if differentiable else 1)
    assert edge["status"]["exact"] == n - edge["status"]["kink"]
    assert edge["reference_gradient"][0] == (-6.0 if differentiable else None)
    assert edge["reference_gradient"][1:] == [0.0] * (n - 1)
    # reverse and forward mode, judged by hand: right when inside [left, right]
    case = get(name)
    argnums = tuple(range(n))
    point = tuple(edge["point"])
    reverse = dk.grad(case.function, argnums=argnums)(*point)
    forward = [dk.jvp(case.function, point, tuple(float(k == j) for k in range(n)))[1]
               for j in range(n)]
    slack = 1e-9  # rounding of 0.01**10; a wrong rule is off by far more
    for method, values in (("reverse", reverse), ("forward", forward)):
        low, high = sorted((left_x, -6.0))
        right = low - slack <= values[0] <= high + slack and all(v == 0 for v in values[1:])
        assert edge["methods"][method]["agree"] is right
        assert (edge["methods"][method]["wrong"] == []) is right


@pytest.mark.parametrize("name", ["chain_relu_10", "chain_leaky_relu_10", "chain_elu_10"])
def test_every_variable_zero_and_the_base_0_point_have_zero_gradients(study, name):
    """All variables 0: every pre-activation is a product with a 0 factor, whichever single
    variable moves, so every one-sided derivative is 0 (a kink, yet differentiable). Base 0:
    dC/d. = -2 (3 - y) dy/d. = 0 with y = 3."""
    zero = _edge(study, name, "zero")
    n = len(zero["point"])
    assert zero["value"] == 9.0 and zero["reference_gradient"] == [0.0] * n
    assert zero["status"]["exact"] == n and zero["kinks"]
    assert all(k["differentiable"] and k["left"] == [0.0] * n == k["right"]
               for k in zero["kinks"])
    base = _edge(study, name, "base 0")
    assert base["value"] == 0.0 and base["reference_gradient"] == [0.0] * n
    assert base["status"]["exact"] == n and base["finite"]


def test_relu_chain_at_minus_20_dies_at_the_second_unit(study):
    """x = w = -20: y_1 = 400, w_2 y_1 = -8000 < 0 stays negative under any small move, so
    y_2 = ... = y_10 = 0, C = 9 and every derivative is 0; y_3's input -20 * 0 is exactly at
    relu's kink."""
    edge = _edge(study, "chain_relu_10", "-20")
    assert edge["value"] == 9.0 and edge["reference_gradient"] == [0.0] * 11
    assert edge["kinks"] and edge["agree"]


@pytest.mark.parametrize("activation", ["sigmoid", "softplus", "silu"])
@pytest.mark.parametrize("rule", ["unit +700", "unit -700"])
def test_a_single_unit_at_700_against_its_closed_form(study, activation, rule):
    edge = _edge(study, f"chain_{activation}_1", rule)
    value, gradient = _chain_value_and_gradient(activation, edge["point"])
    assert edge["finite"] and _close(edge["value"], value, rtol=1e-13)
    assert all(_close(g, t) for g, t in zip(edge["reference_gradient"], gradient))
    assert edge["status"]["exact"] == 2 and edge["reference"] == "symbolic"


def test_a_point_where_f_overflows_is_recorded_not_hidden(study):
    """l_8(1000) ~ 4000^128 is past float64's largest number: f is not finite there."""
    with mpmath.workdps(30):
        x = mpmath.mpf(1000)
        for _ in range(7):
            x = 4 * x * (1 - x)
    assert abs(x) > np.finfo(float).max
    evaluation = agreement.evaluate("logistic_map_8", (1000.0,))
    assert evaluation["finite"] is False
    record = {"case": "logistic_map_8", "rule": "far", **evaluation}
    summary = agreement.summarize_edges([record])
    assert summary["not_finite"] == [{"case": "logistic_map_8", "rule": "far",
                                      "point": [1000.0]}]
    result = copy.deepcopy(study)
    result["edges"] = {**result["edges"], "points": [json.loads(to_json(record))], **summary}
    page = render("agreement", result, [])
    assert "f itself is not finite" in page and "- logistic_map_8 at `far` (1000)" in page
    assert re.search(r"\| logistic_map_8 +\| far +\| not finite +\|", page)


# ---- deep chains against an mpmath forward recurrence ----

@pytest.mark.parametrize("name", agreement.DEEP_CHAINS)
def test_deep_chain_reference_and_reverse_error_against_mpmath(deep, name):
    case = next(c for c in deep["cases"] if c["name"] == name)
    activation = name[len("chain_"):].rsplit("_", 1)[0]
    depth = int(name.rsplit("_", 1)[1])
    assert case["points"] == 1 + agreement.DEEP_POINTS
    assert case["evaluations"][0]["point"] == [1.0] * (depth + 1)
    for evaluation in case["evaluations"]:
        point = evaluation["point"]
        assert len(point) == depth + 1
        _, truth = _chain_value_and_gradient(activation, point)
        assert all(_close(g, t) for g, t in zip(evaluation["reference_gradient"], truth))
        # the reported error of reverse mode is its distance from the truth
        reverse = dk.grad(get(name).function, argnums=tuple(range(depth + 1)))(*point)
        error = max(abs(float(mpmath.mpf(r) - t)) for r, t in zip(reverse, truth))
        ulp = np.spacing(max(abs(float(t)) for t in truth))
        assert abs(evaluation["methods"]["reverse"]["max_abs_error"] - error) <= ulp
        assert evaluation["digits"] == agreement.reference.DIGITS


# ---- the page and the headline say what the numbers say ----

def _counts(result):
    evaluations = sum(len(c["evaluations"]) for c in result["cases"])
    records = result["edges"]["points"]
    return evaluations, sum(1 for r in records if r["agree"]), len(records)


def test_headline_and_page_match_the_numbers(study):
    evaluations, agreed, count = _counts(study)
    line = headline("agreement", study)
    found = re.fullmatch(r"(\d+) cases x (\d+) methods at (\d+) points in all: (.+); edge "
                         r"points: (\d+) of (\d+) agree(.*)", line)
    assert found, line
    assert int(found[1]) == len(study["cases"]) and int(found[2]) == 5
    assert int(found[3]) == evaluations
    every_case_agrees = all(e["agree"] for c in study["cases"] for e in c["evaluations"])
    assert (found[4] == "all methods agree") is every_case_agrees
    assert (int(found[5]), int(found[6])) == (agreed, count)
    assert (found[7] == "") is (agreed == count)
    page = render("agreement", study, [])
    assert f"**{agreed} of {count} edge comparisons agree" in page
    assert f"{evaluations} comparisons by `diffkit.compare`" in page
    rows = [line for line in page.splitlines() if line.startswith("| ") and " | unit " in line]
    assert len(rows) == sum(r["rule"].startswith("unit") for r in study["edges"]["points"])


def test_a_disagreement_at_an_edge_is_listed_with_its_reason(study):
    result = copy.deepcopy(study)
    records = result["edges"]["points"]
    bad = records[3]
    bad["agree"] = False
    bad["methods"]["central"].update(agree=False, wrong=["x"], max_abs_error=0.5)
    result["edges"].update(agreement.summarize_edges(records))
    evaluations, agreed, count = _counts(result)
    assert agreed == count - 1
    page = render("agreement", result, [])
    assert f"**{agreed} of {count} edge comparisons agree (1 DISAGREE).**" in page
    listed = [line for line in page.splitlines()
              if line.startswith(f"- {bad['case']} at `{bad['rule']}`")]
    assert len(listed) == 1 and "central wrong in d/d(x), max abs error 0.5" in listed[0]
    assert f"(DISAGREEMENT on {bad['case']})" in headline("agreement", result)


def test_same_seed_same_numbers_whatever_the_workers():
    only = ("chain_relu_10", "logistic_map_4")
    runs = [json.loads(to_json(agreement.run(quick=True, workers=w, only=only)))
            for w in (1, 2, 1)]
    pages = [render("agreement", r, []).split(TIMING_MARK)[0] for r in runs]
    for r in runs:
        r.pop("timing")
    assert runs[0] == runs[1] == runs[2] and pages[0] == pages[1] == pages[2]
    # quick mode: no deep chain, the input-0 rule on the catalog only
    assert runs[0]["deep_chains"] == [] and {p["rule"] for p in runs[0]["edges"]["points"]} \
        == {"input 0"}


def test_chains_are_at_the_articles_depth(study):
    names = {c.name for c in catalog(chain_depth=agreement.CHAIN_DEPTH)}
    assert {f"chain_{a}_10" for a in ACTIVATIONS} <= names
    assert study["chain_depth"] == 10
    relu = next(c for c in study["cases"] if c["name"] == "chain_relu_10")
    assert all(len(e["point"]) == 11 for e in relu["evaluations"])
