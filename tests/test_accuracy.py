"""The accuracy study against the textbook error model, computed here independently: each case
written out by hand in mpmath (50 digits), the exact difference quotients at the steps the study
took, the slopes of the measured curves in the truncation and rounding regimes, the optimal
steps, and the tolerance claims re-checked with a hand-written float32 NumPy implementation."""

import json
import math

import mpmath
import numpy as np
import pytest

from diffkit.experiments import accuracy
from diffkit.report import pages, plots, writer
from diffkit.report.pages import TIMING_MARK
from diffkit.report.tables import number

EPS = {"float64": 2.0**-52, "float32": 2.0**-23}
DTYPE = {"float64": np.float64, "float32": np.float32}
FD = ("forward", "central", "richardson")


@pytest.fixture(autouse=True)
def _fifty_digits():
    with mpmath.workdps(50):
        yield


def _sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


def _chain_w1(w1):
    y = mpmath.mpf(1)
    for w in [w1] + [mpmath.mpf(1)] * 9:
        y = _sigmoid(w * y)
    return (3 - y) ** 2


def _logistic_4(x):
    for _ in range(3):
        x = 4 * x * (1 - x)
    return x


# Each case by hand, as a function of the studied variable (the others at the case's point).
CLOSED_FORMS = {
    "sigmoid_neuron": lambda w: _sigmoid(w * 1 + 0),
    "tanh at 0.5": mpmath.tanh,
    "tanh at 3": mpmath.tanh,
    "exp at 1": mpmath.exp,
    "exp at 10": mpmath.exp,
    "chain_sigmoid_10": _chain_w1,
    "logistic_map_4": _logistic_4,
    "steep neuron": lambda x: _sigmoid(128 * x + 0),
}
POINTS = {"sigmoid_neuron": 0.0, "tanh at 0.5": 0.5, "tanh at 3": 3.0, "exp at 1": 1.0,
          "exp at 10": 10.0, "chain_sigmoid_10": 1.0, "logistic_map_4": 0.3,
          "steep neuron": 1 / 128}


@pytest.fixture(scope="module")
def study():
    return accuracy.run()


def _cases(study):
    return {c["name"]: c for c in study["cases"]}


def _point(name, dtype):
    return float(DTYPE[dtype](POINTS[name]))


def _derivatives(name, dtype, order=7):
    f = CLOSED_FORMS[name]
    x = mpmath.mpf(_point(name, dtype))
    return [mpmath.diff(f, x, k) for k in range(order + 1)]


def _exact_quotient(method, f, x, step):
    """The quotient in exact arithmetic at the step the study took: no rounding at all."""
    x, h = mpmath.mpf(x), mpmath.mpf(step)
    if method == "forward":
        return (f(x + h) - f(x)) / h
    if method == "central":
        return (f(x + h) - f(x - h)) / (2 * h)
    if method == "richardson":
        fine = (f(x + h / 2) - f(x - h / 2)) / h
        coarse = (f(x + h) - f(x - h)) / (2 * h)
        return (4 * fine - coarse) / 3
    return mpmath.im(f(mpmath.mpc(x, h))) / h


def _leading_power(method, d):
    """The power of h of the first nonzero Taylor term of the quotient's error."""
    scale = max(abs(v) for v in d)
    if method == "forward":
        terms = [(d[k], k - 1) for k in range(2, len(d))]
    elif method == "richardson":
        terms = [(d[k], k - 1) for k in (5, 7)]
    else:
        terms = [(d[k], k - 1) for k in (3, 5, 7)]
    return next(p for c, p in terms if abs(c) > 1e-30 * scale)


def _fit(hs, errors):
    x, y = np.log10(hs), np.log10(errors)
    return float(np.polyfit(x, y, 1)[0])


def test_every_case_has_a_closed_form(study):
    assert set(_cases(study)) == set(CLOSED_FORMS)
    for case in accuracy.cases():
        assert case.point[case.index] == POINTS[case.name]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reference_and_model_constants_match_mpmath(study, dtype):
    for name, case in _cases(study).items():
        entry = case["dtypes"][dtype]
        d = _derivatives(name, dtype)
        assert entry["point"] == _point(name, dtype)
        assert abs(entry["gradient"] - d[1]) <= 2**-53 * abs(d[1])  # correctly rounded
        assert abs(entry["value"] - d[0]) <= 2**-52 * abs(d[0])
        scale = max(abs(v) for v in d)
        for k in range(2, 8):
            assert abs(entry["derivatives"][k] - d[k]) <= 1e-12 * scale, (name, k)


def _truncation_points(study, dtype, method):
    """(name, steps, measured, exact truncation, leading power) where rounding is negligible:
    the exact truncation at least 1000 times the textbook rounding eps max|f| / h."""
    eps = EPS[dtype]
    out = []
    for name, case in _cases(study).items():
        entry = case["dtypes"][dtype]
        f = CLOSED_FORMS[name]
        x = _point(name, dtype)
        d = _derivatives(name, dtype)
        series = entry["series"][method]
        rows = []
        for h, measured in zip(series["steps"], series["abs_error"]):
            exact = abs(_exact_quotient(method, f, x, h) - d[1])
            noise = eps * abs(d[1]) if method == "complex_step" else eps * abs(d[0]) / h
            if exact >= 1000 * noise:
                rows.append((h, measured, float(exact)))
        out.append((name, rows, _leading_power(method, d), d))
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", accuracy.METHODS)
def test_truncation_regime_is_the_exact_quotient_and_has_the_textbook_slope(study, dtype,
                                                                            method):
    fitted, compared = 0, 0
    for name, rows, power, d in _truncation_points(study, dtype, method):
        for h, measured, exact in rows:
            assert abs(measured - exact) <= 0.01 * exact, (name, h, measured, exact)
            compared += 1
        # the slope where the leading term alone is within 5% of the exact truncation
        if method == "forward":
            leading = abs(d[power + 1]) / math.factorial(power + 1)
        elif method == "richardson":
            leading = abs(d[5]) / 480
        else:
            leading = abs(d[power + 1]) / math.factorial(power + 1)
        asymptotic = [(h, m) for h, m, e in rows if abs(e / (leading * h**power) - 1) < 0.05]
        if len(asymptotic) >= 4 and math.log10(asymptotic[0][0] / asymptotic[-1][0]) >= 0.99:
            slope = _fit(*zip(*asymptotic))
            assert abs(slope - power) < 0.05, (name, slope, power)
            fitted += 1
            study_slope = _cases(study)[name]["dtypes"][dtype]["slopes"][method]["truncation"]
            if study_slope is not None:  # the study's own fit says the same
                assert abs(study_slope - power) < 0.05, (name, study_slope)
    assert compared >= 5
    # slopes where the asymptotic regime spans a decade: most cases in float64 (Richardson's
    # h**4 meets rounding within a decade of leaving its asymptote), few in float32
    minimum = {"float64": {"richardson": 3, "central": 7}.get(method, 8),
               "float32": {"forward": 2, "complex_step": 1}.get(method, 0)}[dtype]
    assert fitted >= minimum


def test_forward_difference_is_second_order_where_f2_vanishes(study):
    entry = _cases(study)["sigmoid_neuron"]["dtypes"]["float64"]
    d = _derivatives("sigmoid_neuron", "float64")
    assert abs(d[2]) < 1e-40 and abs(d[3]) > 0.1  # the sigmoid's inflection point
    assert entry["model"]["forward"]["power"] == 2
    assert abs(entry["slopes"]["forward"]["truncation"] - 2) < 0.05


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", FD)
def test_rounding_regime_falls_like_eps_f_over_h(study, dtype, method):
    eps = EPS[dtype]
    fitted = 0
    for name, case in _cases(study).items():
        entry = case["dtypes"][dtype]
        f = CLOSED_FORMS[name]
        x = _point(name, dtype)
        d = _derivatives(name, dtype)
        series = entry["series"][method]
        rows = []
        value, gradient = abs(float(d[0])), abs(float(d[1]))
        for h, measured in zip(series["steps"], series["abs_error"]):
            exact = float(abs(_exact_quotient(method, f, x, h) - d[1]))
            noise = eps * value / h
            if exact <= 1e-3 * noise and measured < 0.1 * gradient:
                rows.append((h, measured / noise))
        if not rows:
            continue
        # rounding errors are a few ulps of f divided by h, never more
        assert max(r for _, r in rows) <= 4, (name, max(r for _, r in rows))
        if len(rows) >= 8 and math.log10(rows[0][0] / rows[-1][0]) >= 2:
            hs = [h for h, _ in rows]
            errors = [r * eps * value / h for h, r in rows]
            nonzero = [(h, e) for h, e in zip(hs, errors) if e > 0]
            slope = _fit(*zip(*nonzero))
            assert -1.3 < slope < -0.7, (name, slope)
            assert 0.02 < float(np.median([r for _, r in rows])) < 2, name
            fitted += 1
    assert fitted >= {"float64": 8, "float32": 1 if method == "forward" else 7}[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_complex_step_has_no_rounding_regime(study, dtype):
    eps = EPS[dtype]
    tiny = float(np.finfo(DTYPE[dtype]).tiny)
    for name, case in _cases(study).items():
        entry = case["dtypes"][dtype]
        f = CLOSED_FORMS[name]
        x = _point(name, dtype)
        d = _derivatives(name, dtype)
        series = entry["series"]["complex_step"]
        assert min(series["steps"]) <= (1e-200 if dtype == "float64" else 1e-37)
        flat = [(h, e) for h, e in zip(series["steps"], series["abs_error"])
                if abs(_exact_quotient("complex_step", f, x, h) - d[1]) <= 1e-3 * eps * abs(d[1])
                and h * abs(d[1]) > 1e6 * tiny]  # h f' far above the subnormal range
        assert len(flat) > 20
        assert max(e for _, e in flat) <= 16 * eps * abs(d[1]), name


def test_float32_complex_step_loses_bits_when_h_f1_is_subnormal(study):
    entry = _cases(study)["chain_sigmoid_10"]["dtypes"]["float32"]
    series = entry["series"]["complex_step"]
    smallest = series["steps"].index(min(series["steps"]))
    assert min(series["steps"]) * abs(entry["gradient"]) < float(np.finfo(np.float32).tiny)
    assert series["abs_error"][smallest] > 100 * EPS["float32"] * abs(entry["gradient"])


def _model_optimum(method, d, eps):
    """The step minimising the leading truncation term plus eps |f| / h, and that minimum."""
    power = _leading_power(method, d)
    if method == "richardson":
        c = abs(d[5]) / 480
    else:
        c = abs(d[power + 1]) / math.factorial(power + 1)
    r = eps * abs(d[0])
    hs = np.logspace(-18, 0, 4001)
    total = [float(c) * h**power + float(r) / h for h in hs]
    k = int(np.argmin(total))
    return hs[k], total[k]


@pytest.mark.parametrize("method", FD)
def test_best_step_and_error_follow_the_model_in_float64(study, method):
    for name, case in _cases(study).items():
        entry = case["dtypes"]["float64"]
        d = _derivatives(name, "float64")
        step, error = _model_optimum(method, d, EPS["float64"])
        best = entry["best"][method]
        assert step / 10 <= best["step"] <= step * 10, (name, best["step"], step)
        assert error / 10 <= best["abs_error"] <= error * 10, (name, best["abs_error"], error)
        # the study's own model says the same
        assert entry["model"][method]["optimal_step"] == pytest.approx(step, rel=0.01)


def test_rule_of_thumb_steps_are_diffkits_in_float64(study):
    for case in study["cases"]:
        entry = case["dtypes"]["float64"]
        scale = max(1.0, abs(entry["point"]))
        for method, power in (("forward", 1 / 2), ("central", 1 / 3)):
            assert entry["rule"][method]["step"] == pytest.approx(EPS["float64"] ** power * scale,
                                                                  rel=1e-6)
            assert entry["diffkit"][method]["step"] == pytest.approx(
                entry["rule"][method]["step"], rel=1e-6)


def _float32_function(name):
    """The case by hand in float32 NumPy, independent of diffkit's operations."""
    one = np.float32(1)

    def sigmoid(z):
        return one / (one + np.exp(-z))

    def chain(w1):
        y = one
        for w in [w1] + [one] * 9:
            y = sigmoid(w * y)
        return (np.float32(3) - y) ** 2

    def logistic(x):
        for _ in range(3):
            x = np.float32(4) * x * (one - x)
        return x

    return {"sigmoid_neuron": sigmoid, "tanh at 0.5": np.tanh, "tanh at 3": np.tanh,
            "exp at 1": np.exp, "exp at 10": np.exp, "chain_sigmoid_10": chain,
            "logistic_map_4": logistic,
            "steep neuron": lambda x: sigmoid(np.float32(128) * x)}[name]


def _central32(f, x, h):
    up, down = x + h, x - h
    return (f(up) - f(down)) / (up - down)


def test_gradient_check_tolerances_hold_for_an_independent_float32_implementation(study):
    row = next(r for r in study["summary"] if r["method"] == "central"
               and r["dtype"] == "float32")
    # a relative tolerance cannot serve the vanishing gradient: the chain sets it at 100%
    assert row["needed_rtol"] >= 0.5 and row["worst_case"] == "chain_sigmoid_10"
    for name, case in _cases(study).items():
        entry = case["dtypes"]["float32"]
        f = _float32_function(name)
        x = np.float32(POINTS[name])
        h = np.float32(EPS["float32"] ** (1 / 3) * max(1.0, abs(float(x))))
        value = _central32(f, x, h)
        assert value.dtype == np.float32
        error = abs(float(value) - entry["gradient"])
        # the tolerance on |f'| + |f| serves every case, with the page's factor 10 of margin
        assert error <= 10 * row["needed_scaled_tol"] * (abs(entry["gradient"])
                                                         + abs(entry["value"])), name
    # and no float32 step whatever gives the chain's derivative a single right digit
    entry = _cases(study)["chain_sigmoid_10"]["dtypes"]["float32"]
    f, x = _float32_function("chain_sigmoid_10"), np.float32(1)
    for k in range(4, 65):
        step = np.float32(10.0 ** (-k / 4))
        if x + step != x - step:
            estimate = float(_central32(f, x, step))
            assert abs(estimate - entry["gradient"]) > 0.1 * abs(entry["gradient"]), k


def test_float64_gradient_check_tolerance_is_met_with_margin(study):
    for row in study["summary"]:
        if row["dtype"] != "float64":
            continue
        worst = max(c["dtypes"]["float64"]["rule"][row["method"]]["abs_error"]
                    / abs(c["dtypes"]["float64"]["gradient"]) for c in study["cases"])
        assert row["needed_rtol"] == worst
        assert row["suggested_rtol"] >= 10 * worst


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ad_keeps_the_digits_of_its_dtype(study, dtype):
    worst, above_rounding = 0.0, 0
    for case in study["cases"]:
        ad = case["ad"][dtype]
        for mode in ("reverse", "forward"):
            for exact, error in zip(ad["reference"], ad[mode]):
                if exact == 0:
                    assert error <= EPS[dtype]
                    continue
                worst = max(worst, error / abs(exact))
                # a float64 result rounded to float32 would err by at most half an ulp
                above_rounding += error > 2**-24 * abs(exact)
    assert worst <= {"float64": 8 * EPS["float64"], "float32": 16 * EPS["float32"]}[dtype]
    if dtype == "float32":
        assert above_rounding > 0  # so it really computed in float32


def test_chain_reference_gradient_matches_mpmath_in_every_variable(study):
    ad = _cases(study)["chain_sigmoid_10"]["ad"]["float64"]

    def chain(*args):
        y = args[0]
        for w in args[1:]:
            y = _sigmoid(w * y)
        return (3 - y) ** 2

    ones = [mpmath.mpf(1)] * 11
    for k, exact in enumerate(ad["reference"]):
        partial = mpmath.diff(chain, ones, tuple(int(i == k) for i in range(11)))
        assert abs(exact - partial) <= 2**-52 * abs(partial)


def test_the_study_is_deterministic(study):
    again = accuracy.run(quick=True)
    first = json.loads(writer.to_json(study))
    second = json.loads(writer.to_json(again))
    first.pop("timing"), second.pop("timing")
    assert first.pop("parameters")["quick"] is False
    assert second.pop("parameters")["quick"] is True
    assert first == second


def test_page_states_the_numbers(study, tmp_path):
    result = json.loads(writer.to_json(study))
    page = pages.render("accuracy", result, [])
    for case in result["cases"]:
        assert f"**{case['name']}**" in page
    for row in result["summary"]:
        assert f"{number(row['needed_rtol'], 2)} ({row['worst_case']})" in page
    assert "none in float32: no step gives a single right digit" in page
    line = pages.headline("accuracy", result)
    assert "float64" in line and "float32" in line and "\n" not in line
    assert TIMING_MARK in page and page.split(TIMING_MARK)[0].count("|") > 100


@pytest.mark.skipif(not plots.available(), reason="matplotlib is not installed")
def test_write_study_twice_gives_the_same_bytes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        writer.write_study("accuracy", out)
    names = sorted(p.name for p in first.iterdir())
    assert names == ["accuracy.json", "accuracy.md", "accuracy.png", "accuracy_complex.png",
                     "accuracy_float32.png", "accuracy_float64.png"]
    for name in names:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        if name.endswith(".md"):
            assert a.decode().split(TIMING_MARK)[0] == b.decode().split(TIMING_MARK)[0]
        elif name.endswith(".json"):
            ja, jb = json.loads(a), json.loads(b)
            ja.pop("timing"), jb.pop("timing")
            assert ja == jb
        else:
            assert a[:4] == b"\x89PNG" and a == b, name
