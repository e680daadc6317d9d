"""`diffkit report`: argument checking, strict deterministic JSON and Markdown, the quick run
end to end, and the committed reports against a fresh run of one study."""

import json
import math
import subprocess
import sys
from argparse import Namespace
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy
from sympy.codegen.cfunctions import expm1, log1p

from diffkit import cli
from diffkit.errors import InputError
from diffkit.experiments import STUDIES
from diffkit.report import check, plots, writer
from diffkit.report.pages import TIMING_MARK

REPORTS = Path(__file__).resolve().parent.parent / "reports"


def _args(**kwargs):
    base = {"out": "unused", "only": None, "quick": True, "seeds": None}
    return Namespace(**{**base, **kwargs})


@pytest.mark.parametrize("only", ["nope", "swell,nope", " , "])
def test_unknown_study_is_invalid_input(only, tmp_path):
    with pytest.raises(InputError, match="--only"):
        writer.run_report(_args(only=only, out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()  # nothing ran


def test_cli_refuses_bad_arguments_with_one_line_and_status_2(tmp_path, capsys):
    assert cli.main(["report", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert cli.main(["report", "--seeds", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown study 'nope'" in err[0] and "--seeds" in err[1]
    assert list(tmp_path.iterdir()) == []


def test_list_command(capsys):
    assert cli.main(["list"]) == 0
    assert "sigmoid_neuron" in capsys.readouterr().out


def test_selected_studies_keep_report_order():
    assert writer.selected_studies("swell,agreement") == ["agreement", "swell"]
    assert writer.selected_studies(None) == list(STUDIES)


def strict_json(text):
    """json.loads that refuses NaN, Infinity and -Infinity (plain json.loads accepts them)."""

    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_is_strict():
    text = writer.to_json({"a": float("nan"), "b": [float("-inf"), 1], "c": {"d": True}})
    assert strict_json(text) == {"a": None, "b": [None, 1], "c": {"d": True}}
    with pytest.raises(ValueError, match="NaN"):
        strict_json(json.dumps({"a": float("nan")}))  # the checker itself refuses


def test_differences_ignore_timing_and_find_the_rest():
    a = {"x": [1.0, {"y": "s"}], "timing": {"t": 1.0}}
    assert check.differences(a, {"x": [1.0 + 1e-14, {"y": "s"}], "timing": {"t": 2.0}}) == []
    assert check.differences(a, {"x": [1.1, {"y": "s"}], "timing": {}}) == ["$.x[0]: 1.0 != 1.1"]
    assert check.differences(a, {"x": [1.0, {"y": "t"}]}) == ["$.x[1].y: 's' != 't'"]
    assert check.differences({"n": True}, {"n": 1}) == ["$.n: True != 1"]
    assert check.differences({"x": [1]}, {"x": [1, 2]}) == ["$.x: 1 entries != 2"]


def _deterministic(text: str) -> str:
    return text.split(TIMING_MARK)[0]


def test_same_seed_same_bytes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        writer.write_study("swell", out, quick=True)
    for path in first.iterdir():
        a, b = path.read_bytes(), (second / path.name).read_bytes()
        if path.suffix == ".md":
            assert _deterministic(a.decode()) == _deterministic(b.decode())
            assert TIMING_MARK in a.decode()
        elif path.suffix == ".json":
            ja, jb = strict_json(a), strict_json(b)
            assert ja.pop("timing") and jb.pop("timing")
            assert ja == jb
        else:
            assert a == b, path.name


def test_without_matplotlib_the_page_says_plots_were_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    writer.write_study("swell", tmp_path, quick=True)
    assert "Plots were skipped" in (tmp_path / "swell.md").read_text()
    assert not list(tmp_path.glob("*.png"))
    index = writer.write_index(tmp_path)
    assert "[swell](swell.md)" in index and "swell.png" not in index


def test_quick_report_runs_end_to_end(tmp_path):
    out = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "diffkit.cli", "report", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "diffkit report:" in done.stderr and done.stdout == ""
    index = (out / "index.md").read_text()
    for name in STUDIES:
        page = (out / f"{name}.md").read_text()
        numbers = strict_json((out / f"{name}.json").read_text())
        assert f"({name}.md)" in index
        assert numbers["parameters"]["quick"] is True
        assert TIMING_MARK in page
    if plots.available():
        for png in ("vanishing_layers.png", "vanishing_products.png", "xor_loss.png",
                    "xor_surface.png", "swell.png"):
            assert (out / png).read_bytes()[:4] == b"\x89PNG"
            assert f"({png})" in index
    agreement = strict_json((out / "agreement.json").read_text())
    assert agreement["all_agree"] is True
    edges = agreement["edges"]  # quick: the input at 0, exact kinks for the relu chains
    assert edges["comparisons"] == len(edges["points"]) > 0
    assert sum(p["agree"] for p in edges["points"]) == edges["agreed"] == edges["comparisons"]
    assert any(p["status"]["kink"] for p in edges["points"])
    for case in agreement["cases"]:
        assert set(case) >= {"name", "point", "methods", "agree"}
        for method in case["methods"].values():
            assert set(method) >= {"max_abs_error", "max_rel_error", "agree"}


@pytest.mark.skipif(not (REPORTS / "vanishing.json").exists(), reason="no committed reports")
def test_committed_vanishing_numbers_match_a_fresh_run():
    committed = strict_json((REPORTS / "vanishing.json").read_text())
    assert committed["parameters"]["quick"] is False and committed["inits"] >= 1000
    check.assert_report_matches("vanishing", REPORTS)


@pytest.mark.skipif(not (REPORTS / "index.md").exists(), reason="no committed reports")
def test_committed_reports_are_complete_and_full():
    index = (REPORTS / "index.md").read_text()
    for name in STUDIES:
        numbers = strict_json((REPORTS / f"{name}.json").read_text())
        assert numbers["parameters"]["quick"] is False
        assert f"({name}.md)" in index
    xor = strict_json((REPORTS / "xor.json").read_text())
    assert xor["seeds"] >= 20 and xor["epochs"] == 30_000
    assert xor["trajectory_max_diff"] < 1e-9
    assert all(min(r["outputs"]["01"], r["outputs"]["10"]) > 0.9
               and max(r["outputs"]["00"], r["outputs"]["11"]) < 0.1
               for r in xor["runs"] if r["solved"])
    agreement = strict_json((REPORTS / "agreement.json").read_text())
    assert agreement["all_agree"] is True and agreement["random_points"] >= 5


def test_assert_report_matches_reports_differences(tmp_path):
    def study(scale=1.0):
        return {"value": 2.0 * scale, "timing": {"seconds": 0.1}}

    (tmp_path / "study.json").write_text(writer.to_json({"value": 2.0, "timing": {"s": 9.0}}))
    check.assert_report_matches(study, tmp_path)
    with pytest.raises(AssertionError, match="value"):
        check.assert_report_matches(study, tmp_path, scale=1.5)


# ---- each committed study's claims, recomputed without the code that made them ----------------
# The golden-file tests above compare a fresh run with the committed numbers: they catch a change,
# not an error present in both. These rebuild the claims from closed forms, SymPy and NumPy.


def _committed(name):
    return strict_json((REPORTS / f"{name}.json").read_text())


_x = sympy.Symbol("x", real=True)
ACTIVATIONS = {  # the article's activations written in SymPy here, not taken from diffkit
    "sigmoid": 1 / (1 + sympy.exp(-_x)),
    "tanh": sympy.tanh(_x),
    "relu": sympy.Piecewise((_x, _x > 0), (0, True)),
    "leaky_relu": sympy.Piecewise((_x, _x > 0), (_x / 100, True)),  # alpha = 0.01
    "softplus": log1p(sympy.exp(_x)),
    "elu": sympy.Piecewise((_x, _x > 0), (expm1(_x), True)),  # alpha = 1
    "silu": _x / (1 + sympy.exp(-_x)),
}
# sup f' over the reals: sigmoid' peaks at 0; the others tend to 1 (elu, softplus) or reach it;
# silu' peaks where silu'' = sigmoid (1 - sigmoid) (2 + x (1 - 2 sigmoid)) vanishes
_SILU_PEAK = mpmath.findroot(lambda t: 2 + t * (1 - 2 / (1 + mpmath.exp(-t))), 2.4)
SUPS = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "softplus": 1.0,
        "elu": 1.0, "silu": float(sympy.diff(ACTIVATIONS["silu"], _x).subs(_x, _SILU_PEAK))}


def _numpy(expr):
    """expr as a NumPy function of x; entries where float64 overflows go through mpmath."""
    fast = sympy.lambdify(_x, expr, "numpy")
    careful = sympy.lambdify(_x, expr, "mpmath")

    def f(h):
        with np.errstate(all="ignore"):
            out = np.asarray(fast(h), dtype=float) * np.ones_like(h)
        bad = ~np.isfinite(out)
        out[bad] = [float(careful(mpmath.mpf(float(v)))) for v in h[bad]]
        return out

    return f


def _chain(activation, weights, x):
    """(pre-activations h_i, outputs y_0..y_n, f'(h_i)) of y_i = f(w_i y_(i-1)), y_0 = x, with f
    and f' from SymPy; arrays over the inits (columns)."""
    f = _numpy(ACTIVATIONS[activation])
    slope = _numpy(sympy.diff(ACTIVATIONS[activation], _x))
    ys, hs = [np.full(weights.shape[1], x)], []
    for w in weights:
        hs.append(w * ys[-1])
        ys.append(f(hs[-1]))
    return np.array(hs), np.array(ys), slope(np.array(hs))


def _same(computed, committed, what, rtol=1e-9):
    assert np.allclose(computed, committed, rtol=rtol, atol=1e-300), (what, computed, committed)


def test_committed_vanishing_claims_from_sympy_derivatives():
    report = _committed("vanishing")
    depths = report["parameters"]["max_depth"]
    inits = report["inits"]
    weights = np.random.default_rng(report["seed"]).normal(size=(max(depths, 10), inits))
    assert set(report["activations"]) == set(ACTIVATIONS), "a new activation needs its formula"
    for activation, numbers in report["activations"].items():
        sup = SUPS[activation]
        assert numbers["sup_derivative"] == pytest.approx(sup, rel=1e-12), activation
        _same(numbers["bound"], sup ** np.arange(1, depths + 1), f"{activation} bound", 1e-12)
        hs, ys, slopes = _chain(activation, weights[:depths], report["x"])
        products = np.cumprod(slopes, axis=0)
        for key, stat in [("product_median", np.median(products, axis=1)),
                          ("product_p05", np.quantile(products, 0.05, axis=1)),
                          ("product_p95", np.quantile(products, 0.95, axis=1)),
                          ("product_abs_max", np.max(np.abs(products), axis=1)),
                          ("abs_product_median", np.median(np.abs(products), axis=1)),
                          ("zero_fraction", np.mean(products == 0, axis=1))]:
            _same(stat, numbers[key], f"{activation} {key}")
        # dC/dw_i of C = (3 - y_10)^2 by the chain rule written out: -2 (3 - y_10) f'(h_i)
        # y_(i-1) prod_(j > i) w_j f'(h_j)
        hs, ys, slopes = _chain(activation, weights[:10], report["x"])
        after = np.cumprod((weights[:10] * slopes)[::-1], axis=0)[::-1]
        later = np.vstack([after[1:], np.ones((1, inits))])
        grads = np.abs(-2 * (3.0 - ys[-1]) * slopes * ys[:-1] * later)
        _same(np.median(grads, axis=1), numbers["layer_grads_depth10"], f"{activation} grads")
        assert [int(np.sum(g != 0)) for g in grads] == numbers[
            "layer_grads_depth10_nonzero_count"], activation


def _relu_slope(h, alpha):
    return np.where(h > 0, 1.0, alpha)


def _chain_gradients(weights, x, alpha):
    """dC/dw of C = (3 - y_n)^2, y_i = act(w_i y_(i-1)), act relu (alpha 0) or leaky: backprop
    by hand. Shape (weights, inits)."""
    ys, hs = [np.full(weights.shape[1], x)], []
    for w in weights:
        hs.append(w * ys[-1])
        ys.append(np.where(hs[-1] > 0, hs[-1], alpha * hs[-1]))
    g = -2 * (3.0 - ys[-1])
    grads = []
    for w, h, y in zip(weights[::-1], hs[::-1], ys[-2::-1]):
        gh = g * _relu_slope(h, alpha)
        grads.append(gh * y)
        g = gh * w
    return np.array(grads[::-1])


def _wide_gradients(w, x, alpha):
    """dC/dw of x -> 3 units -> 3 units -> linear y, C = (3 - y)^2, no biases: backprop by hand.
    w[0:3] first layer, w[3 + 3k + j] unit j to unit k, w[12:15] output."""
    act = lambda h: np.where(h > 0, h, alpha * h)
    a = w[0:3] * x
    first = act(a)
    b = np.array([sum(w[3 + 3 * k + j] * first[j] for j in range(3)) for k in range(3)])
    second = act(b)
    y = sum(w[12 + k] * second[k] for k in range(3))
    dy = -2 * (3.0 - y)
    grads = np.empty_like(w)
    db = dy * w[12:15] * _relu_slope(b, alpha)
    grads[12:15] = dy * second
    for k in range(3):
        grads[3 + 3 * k: 6 + 3 * k] = db[k] * first
    da = sum(db[k] * w[3 + 3 * k: 6 + 3 * k] for k in range(3)) * _relu_slope(a, alpha)
    grads[0:3] = da * x
    return grads


def test_committed_vanishing_cure_from_hand_written_backprop():
    report = _committed("vanishing")
    cure = report["cure"]
    rng = np.random.default_rng([report["seed"], 1])  # each model's own fresh weights, in order
    for model in cure["models"]:
        weights = rng.normal(size=(model["weights"], cure["inits"]))
        alpha = 0.01 if "leaky" in model["name"] else 0.0
        if model["name"].endswith("_wide"):
            grads = _wide_gradients(weights, report["x"], alpha)
        else:
            assert model["name"].startswith("chain_"), model["name"]
            grads = _chain_gradients(weights, report["x"], alpha)
        assert model["all_zero_fraction"] == np.mean(np.all(grads == 0, axis=0)), model
        assert model["zero_entry_fraction"] == np.mean(grads == 0), model
        assert model["first_layer_zero_fraction"] == np.mean(grads[0] == 0), model
    # a single-unit ReLU chain is dead exactly when some weight is <= 0 (x = 1 > 0)
    chain = next(m for m in cure["models"] if m["name"] == "chain_relu_3")
    assert 0.85 < chain["all_zero_fraction"] < 0.9  # 1 - 2**-3 = 0.875 up to sampling


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = np.array([0.0, 1.0, 1.0, 0.0])


def _xor_forward(params):
    """The 2-2-1 sigmoid network's outputs, shape (4 samples, runs), for params (9, runs)."""
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = params
    x1, x2 = XOR_INPUTS[:, :1], XOR_INPUTS[:, 1:]
    h1 = _sigmoid(x1 * w1 + x2 * w2 + b1)
    h2 = _sigmoid(x1 * w3 + x2 * w4 + b2)
    return h1, h2, _sigmoid(w5 * h1 + w6 * h2 + b3)


def _xor_descent(params, epochs, lr, every):
    """Full-batch gradient descent on sum (y - t)^2, every run at once (params (9, runs)):
    (final params, the loss before the update at epochs 0, every, 2 every, ...)."""
    targets = XOR_TARGETS[:, None]
    x1, x2 = XOR_INPUTS[:, :1], XOR_INPUTS[:, 1:]
    params = np.array(params, dtype=float)
    curve = []
    for epoch in range(epochs):
        w1, w2, w3, w4, w5, w6, b1, b2, b3 = params
        h1, h2, y = _xor_forward(params)
        if epoch % every == 0:
            curve.append(np.sum((y - targets) ** 2, axis=0))
        dz = 2 * (y - targets) * y * (1 - y)
        dz1 = dz * w5 * h1 * (1 - h1)
        dz2 = dz * w6 * h2 * (1 - h2)
        grads = [dz1 * x1, dz1 * x2, dz2 * x1, dz2 * x2, dz * h1, dz * h2, dz1, dz2, dz]
        params = params - lr * np.array([np.sum(g, axis=0) for g in grads])
    return params, np.array(curve)


def test_committed_xor_runs_from_a_hand_written_numpy_network():
    report = _committed("xor")
    runs = report["runs"]
    epochs, lr = {r["epochs"] for r in runs}, {r["lr"] for r in runs}
    assert len(epochs) == len(lr) == 1
    seeds = sorted({r["seed"] for r in runs})
    initial = np.array([np.random.default_rng(s).normal(size=9) for s in seeds]).T
    final, curves = _xor_descent(initial, epochs.pop(), lr.pop(), report["curve_every"])
    solved_scalar = []
    for run in runs:
        column = seeds.index(run["seed"])
        assert run["initial_params"] == initial[:, column].tolist(), run["seed"]
        _same(run["final_params"], final[:, column], f"seed {run['seed']} final", 1e-8)
        _same(run["loss_curve"], curves[:, column], f"seed {run['seed']} losses", 1e-8)
        # the committed final parameters, through the network written here
        _, _, y = _xor_forward(np.array(run["final_params"])[:, None])
        y = y[:, 0]
        assert run["final_loss"] == pytest.approx(np.sum((y - XOR_TARGETS) ** 2), rel=1e-12)
        assert [run["outputs"][k] for k in ("00", "01", "10", "11")] == pytest.approx(y, rel=1e-12)
        solved = bool(np.all(np.abs(y - XOR_TARGETS) < report["solved_tolerance"]))
        assert run["solved"] is solved
        if run["style"] == "scalar":
            solved_scalar.append(solved)
    assert report["success_rate"] == sum(solved_scalar) / len(solved_scalar)


def _poly_mul(a, b):
    """The product of two polynomials given by integer coefficients, lowest degree first."""
    out = [0] * (len(a) + len(b) - 1)
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            out[i + j] += p * q
    return out


def _logistic_polynomial(n):
    """l_n(x) as integer coefficients: l_1 = x, l_(k+1) = 4 l_k (1 - l_k)."""
    poly = [0, 1]
    for _ in range(n - 1):
        one_minus = [1 - poly[0]] + [-c for c in poly[1:]]
        poly = [4 * c for c in _poly_mul(poly, one_minus)]
    return poly


def _exactly(poly, x):
    """The polynomial at the float x, in exact rational arithmetic (in floats the expanded
    logistic polynomials cancel catastrophically)."""
    return sum(c * Fraction(x) ** k for k, c in enumerate(poly))


def test_committed_swell_numbers_follow_their_recurrences():
    report = _committed("swell")
    # one step x -> 4 * x * (1 - x) records 4*x and 1-x (each reached by every path into x) and
    # their product (reached through both): nodes T(n+1) = T(n) + 3, paths P(n+1) = 2 P(n)
    nodes, paths = {1: 1}, {1: 1}
    for n in range(2, 101):
        nodes[n], paths[n] = nodes[n - 1] + 3, 2 * paths[n - 1]
    rows = report["logistic_map"] + report["tape_only"]
    assert rows and all(r["tape_nodes"] == nodes[r["n"]] for r in rows), rows
    assert all(r["paths"] == paths[r["n"]] for r in rows), rows
    x = sympy.Symbol("x", real=True)
    for row in report["logistic_map"][:9]:  # SymPy's own sizes of d l_n / dx, built here
        curve = x
        for _ in range(row["n"] - 1):
            curve = 4 * curve * (1 - curve)
        derivative = sympy.diff(curve, x)
        assert row["symbolic_ops"] == sympy.count_ops(derivative), row
    # Baydin et al.'s Table 1, by integer polynomial arithmetic (no SymPy)
    l4 = _logistic_polynomial(4)
    slope = [k * c for k, c in enumerate(l4)][1:]
    assert slope == [64 * c for c in (1, -42, 504, -2640, 7040, -9984, 7168, -2048)]
    assert report["baydin"]["matches"] is True


def _agreement_value(name, point):
    """The agreement study's functions written out here with math, by case name."""
    sigmoid = lambda z: 1 / (1 + math.exp(-z))
    acts = {"sigmoid": sigmoid, "tanh": math.tanh, "relu": lambda h: max(h, 0.0),
            "leaky_relu": lambda h: h if h > 0 else 0.01 * h,
            "softplus": lambda h: math.log1p(math.exp(h)),
            "elu": lambda h: h if h > 0 else math.expm1(h), "silu": lambda h: h * sigmoid(h)}
    if name == "sigmoid_neuron":
        x, w, b = point
        return sigmoid(w * x + b)
    if name == "sum_product":
        return (point[0] + point[1]) * point[2]
    if name == "xor_graph":
        return -0.5  # h1 + h2 - 1.5 with h1 + h2 = 1 for every x, y
    if name == "xor_network":
        x1, x2, w1, w2, w3, w4, w5, w6, b1, b2, b3 = point
        h1, h2 = sigmoid(x1 * w1 + x2 * w2 + b1), sigmoid(x1 * w3 + x2 * w4 + b2)
        return sigmoid(w5 * h1 + w6 * h2 + b3)
    if name == "leaky_relu_wide":
        grads_free = np.array(point[1:], dtype=float)[:, None]
        act = lambda h: np.where(h > 0, h, 0.01 * h)
        first = act(grads_free[0:3] * point[0])
        second = act(np.array([sum(grads_free[3 + 3 * k + j] * first[j] for j in range(3))
                               for k in range(3)]))
        return float((3.0 - sum(grads_free[12 + k] * second[k] for k in range(3)))[0] ** 2)
    if name.startswith("chain_"):
        activation = name[len("chain_"):].rsplit("_", 1)[0]
        y = point[0]
        for w in point[1:]:
            y = acts[activation](w * y)
        return (3.0 - y) ** 2
    if name.startswith("logistic_map_"):
        return float(_exactly(_logistic_polynomial(int(name.rsplit("_", 1)[1])), point[0]))
    raise AssertionError(f"no formula here for the agreement case {name}")


def test_committed_agreement_values_and_article_numbers():
    report = _committed("agreement")
    for case in report["cases"]:
        assert case["agree"] is all(m["agree"] for m in case["methods"].values()), case["name"]
        for evaluation in case["evaluations"]:
            expected = _agreement_value(case["name"], evaluation["point"])
            assert evaluation["value"] == pytest.approx(expected, rel=1e-11, abs=1e-14), (
                case["name"], evaluation["point"])
    assert report["all_agree"] is all(case["agree"] for case in report["cases"])
    # the article's gradients, derived by hand at the article's points
    points = {case["name"]: case["point"] for case in report["cases"]}
    s = 0.5  # sigmoid(0) at the neuron's point (1, 0, 0)
    by_hand = {"sigmoid_neuron": (0.5, [0.0, s * (1 - s) * 1.0, s * (1 - s)]),
               "sum_product": (2.0, [1.0, 1.0, 2.0]), "xor_graph": (-0.5, [0.0, 0.0])}
    assert points["sigmoid_neuron"] == [1.0, 0.0, 0.0] and points["sum_product"] == [1.0] * 3
    l4 = _logistic_polynomial(4)
    slope = [k * c for k, c in enumerate(l4)][1:]
    x = points["logistic_map_4"][0]
    by_hand["logistic_map_4"] = (float(_exactly(l4, x)), [float(_exactly(slope, x))])
    for entry in report["expected"]:
        value, gradient = by_hand[entry["name"]]
        assert entry["value"] == pytest.approx(value, rel=1e-12), entry
        assert entry["gradient"] == pytest.approx(gradient, rel=1e-12, abs=1e-15), entry
        assert entry["matches"] is True
