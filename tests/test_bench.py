"""The benchmark: the article's algorithm is a correct (but path-enumerating) baseline, and the
runner checks, times and reports a tiny configuration end to end. No timing assertions here."""

import dataclasses
import json
import math
import re
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.bench import agreement, article, peers, runner, verdicts, workloads
from diffkit.bench.protocol import Target, Workload
from diffkit.bench.targets import all_of, faster_than
from diffkit.bench.workloads import w1_neuron, w4_logistic, w5_mlp, w6_verdict
from diffkit.cli import main
from diffkit.expression import parse_point
from diffkit.tolerance import close

V = article.Variable


def test_article_sigmoid_neuron_matches_the_closed_form():
    x, w, b = V(1.0), V(0.0), V(0.0)
    out = 1 / (1 + article.exp(-(w * x + b)))
    grads = article.gradients(out)
    assert out.value == 0.5
    assert (grads[x], grads[w], grads[b]) == (0.0, 0.25, 0.25)


def test_article_sum_product_and_shared_inputs():
    w1, w2, w3 = V(1.0), V(1.0), V(1.0)
    grads = article.gradients((w1 + w2) * w3)
    assert (grads[w1], grads[w2], grads[w3]) == (1.0, 1.0, 2.0)
    a = V(1.5)
    grads = article.gradients(a * a * a - 2 * a)  # d/da = 3a^2 - 2, a reached by 4 paths
    assert close(grads[a], 3 * 1.5**2 - 2)


@pytest.mark.parametrize("point", [(0.3, -1.2, 0.7), (1.1, 0.4, -2.0)])
def test_article_agrees_with_diffkit_on_a_mixed_expression(point):
    def f(exp, log, tanh):
        return lambda x, y, z: log(1 + x * x) * tanh(y - z) / (2 + exp(-x * z)) - y / (3 - z)

    xs = [V(p) for p in point]
    grads = article.gradients(f(article.exp, article.log, article.tanh)(*xs))
    expected = dk.grad(f(dk.exp, dk.log, dk.tanh), argnums=(0, 1, 2))(*point)
    assert close([grads[v] for v in xs], expected, rtol=1e-13)


def test_article_recursion_fails_on_a_deep_chain():
    assert sys.getrecursionlimit() <= 10_000
    depth = sys.getrecursionlimit()  # at least one push per node: deeper than the limit
    x = V(0.5)
    y = x
    for _ in range(depth):
        y = article.tanh(y)
    with pytest.raises(RecursionError):
        article.gradients(y)
    assert close(dk.grad(lambda v: _tanh_chain(v, depth))(0.5), _tanh_chain_derivative(depth))


def _tanh_chain(v, depth):
    for _ in range(depth):
        v = dk.tanh(v)
    return v


def _tanh_chain_derivative(depth):
    value, derivative = 0.5, 1.0
    for _ in range(depth):
        value = math.tanh(value)
        derivative *= 1 - value * value
    return derivative


def test_article_walks_exponentially_many_paths_on_the_logistic_map():
    counts = []
    tape_sizes = []
    for n in range(4, 13):
        x = V(0.3)
        counts.append(article.count_paths(w4_logistic.logistic(n)(x)))
        tape_sizes.append(len(dk.trace(w4_logistic.logistic(n), 0.3).entries))
    growth = [b / a for a, b in zip(counts, counts[1:])]
    assert all(1.9 < g < 2.1 for g in growth[3:])  # the paths double with every step
    steps = np.diff(tape_sizes)
    assert len(set(steps)) == 1  # diffkit's tape grows by the same few entries per step


def test_count_paths_counts_the_pushes_of_gradients():
    x = V(0.3)
    out = w4_logistic.logistic(5)(x)
    pushes = 0

    def push(node):  # the walk of article.gradients, counting its pushes
        nonlocal pushes
        for child, _ in node.local_gradients:
            pushes += 1
            push(child)

    push(out)
    assert pushes == article.count_paths(out)


def _tiny_w1(extra_builders=None):
    builders = {"diffkit": w1_neuron.build_diffkit, "hand": w1_neuron.build_hand,
                "article": w1_neuron.build_article}
    builders.update(extra_builders or {})
    return dataclasses.replace(w1_neuron.WORKLOAD, title="tiny W1", builders=builders)


def _tiny_w4():
    return dataclasses.replace(w4_logistic.WORKLOAD, sizes=(2, 4, 6), quick_sizes=(2, 4, 6))


TINY = runner.Settings(repeats=2, batch_seconds=0.001, budget=0.2, quick=True)


def test_runner_end_to_end_writes_strict_json(tmp_path):
    engines = peers.select("hand,article,sympy")
    report = runner.benchmark([_tiny_w1(), _tiny_w4()], engines, TINY)
    paths = runner.write_report(report, tmp_path)
    data = json.loads((tmp_path / "performance.json").read_text())
    assert {p.name for p in paths} == {"performance.md", "performance.json"}
    assert {"machine", "versions", "timing", "targets", "settings"} <= set(data)
    assert data["machine"]["cpu_count"] >= 1
    assert data["machine"]["blas_kernel"]
    assert "OPENBLAS_CORETYPE" in data["machine"]
    rows = data["timing"]["W1"]["rows"]
    assert {r["engine"] for r in rows} == {"diffkit", "hand", "article"}
    for row in rows:
        assert row["status"] == "ok"
        assert row["min_s"] <= row["median_s"] <= row["max_s"]
    assert [r["ratio"] for r in rows if r["engine"] == "diffkit"] == [1.0]
    w4 = data["timing"]["W4"]
    assert {r["size"] for r in w4["rows"]} == {2, 4, 6}
    assert "sympy_derivative_ops" in w4
    markdown = (tmp_path / "performance.md").read_text()
    assert "| diffkit |" in markdown and "BLAS kernel" in markdown


def test_a_wrong_result_does_not_count():
    broken = {"hand": lambda ns, size: (lambda: (0.0, 0.25, 0.3))}
    report = runner.benchmark([_tiny_w1(broken)], peers.select("hand"), TINY)
    (hand,) = [r for r in report["timing"]["W1"]["rows"] if r["engine"] == "hand"]
    assert hand["status"].startswith("wrong result")
    assert "median_s" not in hand


def test_missing_peers_are_reported_not_installed(monkeypatch):
    ghost = peers.Peer("ghost", "a peer that is not installed", ("no_such_module_for_diffkit",))
    assert not ghost.available()
    assert ghost.version() == peers.NOT_INSTALLED
    monkeypatch.setitem(peers.BY_NAME, "ghost", ghost)
    workload = _tiny_w1({"ghost": lambda ns, size: (lambda: (0.0, 0.25, 0.25))})
    report = runner.benchmark([workload], peers.select("ghost"), TINY)
    (row,) = [r for r in report["timing"]["W1"]["rows"] if r["engine"] == "ghost"]
    assert row["status"] == "not installed"
    assert report["versions"]["ghost"] == "not installed"


def test_failures_are_recorded_and_stop_larger_sizes():
    def fails_past_two(ns, size):
        if size > 2:
            raise RecursionError
        return w4_logistic.build_hand(ns, size)

    workload = Workload("W4", "tiny", {"diffkit": w4_logistic.build_diffkit,
                                       "hand": fails_past_two},
                        sizes=(2, 4, 6), quick_sizes=(2, 4, 6), size_label="n")
    report = runner.benchmark([workload], peers.select("hand"), TINY)
    statuses = [r["status"] for r in report["timing"]["W4"]["rows"] if r["engine"] == "hand"]
    assert statuses[0] == "ok"
    assert statuses[1] == statuses[2] == "failed: RecursionError at n=4"


def test_cli_bench_quick_runs_and_rejects_unknown_names(tmp_path, capsys):
    status = main(["bench", "--quick", "--only", "W1", "--peers", "hand,article",
                   "--out", str(tmp_path)])
    assert status == 0
    data = json.loads((tmp_path / "performance.json").read_text())
    assert list(data["timing"]) == ["W1"]
    assert main(["bench", "--peers", "nobody", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--only", "W9", "--out", str(tmp_path)]) == 2
    assert "unknown" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--only", ""], ["--only", " , "], ["--peers", ",,,"],
                                  ["--peers", ""]])
def test_cli_bench_refuses_a_list_that_names_nothing(tmp_path, capsys, argv):
    assert main(["bench", "--quick", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no" in err
    assert list(tmp_path.iterdir()) == []  # refused before anything ran


SHARED = ("runner", "timing", "verdicts", "agreement", "targets", "protocol", "idioms")


@pytest.mark.parametrize("module", SHARED)
def test_the_runner_and_shared_modules_name_no_workload(module):
    source = (Path(runner.__file__).parent / f"{module}.py").read_text()
    assert re.search(r"\bW[0-9]", source) is None
    for workload in workloads.WORKLOADS:
        assert workload.name not in source


def _toy_workload():
    """x**n differentiated at 1.5: diffkit, the closed form n x^(n-1), and a wrong engine."""

    def build_diffkit(ns, n):
        g = ns.diffkit.grad(lambda x: x**n)
        return lambda: g(1.5)

    def build_hand(ns, n):
        return lambda: n * 1.5 ** (n - 1)

    def build_wrong(ns, n):  # off by one power: must be caught, not timed
        return lambda: n * 1.5**n

    def targets(timing):
        rows = timing["toy"]["rows"]
        return [
            all_of("toy", "diffkit within 1e9x of the closed form at n = 3",
                   [faster_than(timing, "toy", "hand", 1e-9, size=3, strict=False)]),
            Target("toy", "the closed form always ok",
                   all(r["status"] == "ok" for r in rows if r["engine"] == "hand"),
                   f"{len(rows)} rows"),
        ]

    return Workload(
        "toy", "x**n at 1.5, a workload registered by the test",
        {"diffkit": build_diffkit, "hand": build_hand, "article": build_wrong},
        sizes=(1, 2, 3, 4), quick_sizes=(2, 3), size_label="n", targets=targets,
        analyse=lambda rows, quick: {"toy_sizes": sorted({r["size"] for r in rows}),
                                     "toy_quick": quick},
        summary=lambda result: [f"- toy summary: {len(result['rows'])} rows"],
        notes=("the toy's note",),
    )


def test_a_registered_toy_workload_runs_through_the_runner(tmp_path, monkeypatch):
    monkeypatch.setattr(workloads, "WORKLOADS", [*workloads.WORKLOADS, _toy_workload()])
    assert main(["bench", "--quick", "--only", "toy", "--peers", "hand,article",
                 "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "performance.json").read_text())
    assert list(data["timing"]) == ["toy"]
    toy = data["timing"]["toy"]
    status = {(r["engine"], r["size"]): r["status"] for r in toy["rows"]}
    assert set(status) == {(e, n) for e in ("diffkit", "hand", "article") for n in (2, 3)}
    assert status["diffkit", 3] == status["hand", 3] == "ok"  # diffkit agrees with n x^(n-1)
    assert status["article", 3].startswith("wrong result")
    assert toy["toy_sizes"] == [2, 3] and toy["toy_quick"] is True
    assert [(t["workload"], t["target"], t["holds"]) for t in data["targets"]] == [
        ("toy", "diffkit within 1e9x of the closed form at n = 3", True),
        ("toy", "the closed form always ok", True),
    ]
    assert "vs hand" in data["targets"][0]["detail"]
    markdown = (tmp_path / "performance.md").read_text()
    assert "## toy: x**n at 1.5" in markdown and "- toy summary: 6 rows" in markdown
    notes = markdown.split("## Notes", 1)[1]
    assert "- the toy's note" in notes and "W6" not in notes


def test_every_workload_agrees_with_the_floor_at_a_small_size():
    """The builders compute the same thing in every installed engine (checked here for the
    engines that need only the core dependencies)."""
    ns = SimpleNamespace(diffkit=dk, numpy=np, article=article)
    small = {"W3": 20, "W4": 8, "W5": "float64", "W5-forward": "float64"}
    for workload in workloads.WORKLOADS:
        if workload.measure is not None:  # W6 has no floor: its runs are judged by their verdict
            continue
        size = small.get(workload.name)
        floor = agreement.flatten(workload.builders["hand"](ns, size)())
        for engine in ("diffkit", "diffkit-compile"):
            if engine in workload.builders:
                mine = agreement.flatten(workload.builders[engine](ns, size)())
                problem = agreement.disagreement(workload, floor, mine)
                assert problem is None, (workload.name, engine, problem)


def test_float32_stays_float32_in_the_mlp_step():
    ns = SimpleNamespace(diffkit=dk)
    value, grads, new = w5_mlp.build_diffkit(ns, "float32")()
    assert all(g.dtype == np.float32 for g in grads)
    assert all(p.dtype == np.float32 for p in new)


# ---- W6: time to a verdict ----

FLOATS = SimpleNamespace(sigmoid=lambda z: 1 / (1 + math.exp(-z)), tanh=math.tanh)


def _sympy_value(case, digits=30):
    """The case's verify text evaluated by SymPy at its point."""
    expr = dk.parse(case.text).to_sympy()
    point = dict(zip(case.names, case.point))
    return expr.xreplace({s: sympy.Float(repr(point[s.name]), 40) for s in expr.free_symbols}
                         ).evalf(digits)


def test_every_w6_case_is_one_expression_in_python_and_in_the_verify_grammar():
    for case in w6_verdict.CASES:
        expression = dk.parse(case.text)  # within the grammar's length and nesting limits
        assert sorted(expression.variables) == sorted(case.names)
        mine = case.function(FLOATS)(*case.point)
        if len(case.names) <= 101:
            assert close(mine, float(_sympy_value(case)), rtol=1e-13), case.name
        else:  # SymPy takes seconds here; the parsed text evaluates it in floats
            assert close(mine, expression(**dict(zip(case.names, case.point))), rtol=1e-13)
        argv = w6_verdict.verify_argv("diffkit", case)
        assert parse_point(argv[argv.index("--at") + 1]) == dict(zip(case.names, case.point))
        assert ("--order" in argv) == (case.order == 2)


def test_w6_quick_mode_runs_only_the_small_order_1_cases():
    w6 = w6_verdict.WORKLOAD
    assert w6.measure is verdicts.time_verdicts
    assert {c.name for c in w6.quick_sizes} < {c.name for c in w6.sizes}
    assert all(case.order == 1 and len(case.names) <= 31 for case in w6.quick_sizes)
    assert runner.Settings.for_run(quick=True).verdict_deadline <= 5


def test_a_w6_chain_gradient_is_the_chain_rule():
    case = w6_verdict.chain_case("tanh", 3, 1, deadline=30.0)
    x, *ws = case.point
    values = [x]
    for w in ws:
        values.append(math.tanh(w * values[-1]))
    expected = [0.0] * 4  # d s_3 / d (x, w1, w2, w3), by hand
    outer = 1.0
    for k in range(3, 0, -1):
        local = 1 - values[k] ** 2
        expected[k] = outer * local * values[k - 1]
        outer *= local * ws[k - 1]
    expected[0] = outer
    assert close(dk.grad(case.function(dk), argnums=(0, 1, 2, 3))(*case.point), expected,
                 rtol=1e-13)


def _tiny_w6(cases, builders=None, quick=None):
    return dataclasses.replace(w6_verdict.WORKLOAD, title="tiny W6",
                               builders=builders or w6_verdict.BUILDERS, sizes=cases,
                               quick_sizes=quick or cases)


W6_TINY = runner.Settings(repeats=1, batch_seconds=0.001, budget=0.1, quick=True,
                          verdict_calls=1, verdict_deadline=60.0)


def test_w6_times_agreeing_verdicts_in_process_and_from_the_command_line(tmp_path):
    cases = (
        w6_verdict.chain_case("sigmoid", 2, 2, deadline=60.0,
                             targets={"diffkit": 1e6, "diffkit-cli": 0.0}),
        w6_verdict.units_case(3, 1, deadline=60.0, slope=True),
        w6_verdict.units_case(5, 1, deadline=60.0, slope=True),
        w6_verdict.units_case(4, 2, deadline=60.0, targets={"diffkit": 1.0}),
    )
    report = runner.benchmark([_tiny_w6(cases, quick=cases[:3])],
                              peers.select("diffkit-cli,torch-gradcheck"), W6_TINY)
    result = report["timing"]["W6"]
    rows = {(r["engine"], r["size"]): r for r in result["rows"]}
    assert {size for _, size in rows} == {c.name for c in cases[:3]}
    torch_there = peers.BY_NAME["torch-gradcheck"].available()
    for (engine, size), row in rows.items():
        if engine == "torch-gradcheck" and not torch_there:
            assert row["status"] == "not installed"
        else:
            assert row["status"] == "ok", (engine, size, row["status"])
            assert row["median_s"] > 0 and row["repeats"] == 1
    targets = [t for t in report["targets"] if t["workload"] == "W6"]
    by_text = {t["target"]: t for t in targets}
    assert by_text["sigmoid2/o2: dk.compare in process <= 1e+06 s"]["holds"] is True
    assert by_text["sigmoid2/o2: `diffkit verify` as a new process <= 0 s"]["holds"] is False
    assert by_text["units4/o2: dk.compare in process <= 1 s"]["holds"] is None  # not run
    slope = [t for t in targets if "linear" in t["target"]]
    assert len(slope) == 1 and slope[0]["holds"] in (True, False)
    assert "diffkit" in result["growth"] and "diffkit-cli" in result["growth"]
    methods = {"reverse", "forward", "symbolic", "central", "complex_step"}
    for engine in ("diffkit", "diffkit-cli"):
        method_s = rows[engine, "units3/o1"]["method_s"]
        assert set(method_s) == methods
        assert 0 < sum(method_s.values()) < rows[engine, "units3/o1"]["median_s"]
    assert methods <= {name.split(": ")[1] for name in result["growth"] if ": " in name}
    assert set(result["cases"]) == {c.name for c in cases}
    runner.write_report(report, tmp_path)
    markdown = (tmp_path / "performance.md").read_text()
    assert "| sigmoid2/o2 | diffkit-cli |" in markdown
    assert "- units3/o1: sum_i sigmoid(c_i x_i)" in markdown and "- units4/o2:" not in markdown


def _broken_cube():
    """x^3 whose VJP is 1% off (its JVP and SymPy counterpart are right)."""
    cube = dk.primitive(lambda x: x**3, name="bench cube", sympy_impl=lambda x: x**3)
    dk.defvjp(cube, lambda g, ans, x: 3.03 * g * x**2)
    dk.defjvp(cube, lambda t, ans, x: 3 * t * x**2)
    return cube


def test_w6_does_not_time_a_wrong_or_incomplete_verdict():
    cube = _broken_cube()
    twice = dk.primitive(lambda x: 2 * x, name="bench twice")  # no SymPy counterpart
    dk.defvjp(twice, lambda g, ans, x: 2 * g)
    dk.defjvp(twice, lambda t, ans, x: 2 * t)
    base = w6_verdict.chain_case("tanh", 2, 1, deadline=60.0, targets={"diffkit": 1e6})
    wrong = verdicts.VerdictCase(
        "cube/o1", "a cube with a wrong VJP", ("x",), (0.7,), 1, lambda ops: cube, "x**3", 60.0,
        "cube", {"diffkit": 1e6})
    no_symbolic = verdicts.VerdictCase(
        "twice/o1", "no SymPy counterpart", ("x",), (0.7,), 1,
        lambda ops: (lambda x: twice(ops.sin(x))), "2*sin(x)", 60.0, "twice")
    bad_text = verdicts.VerdictCase(
        "badtext/o1", "text the grammar refuses", base.names, base.point, 1, base.function,
        "tanh(w2*tanh(w1*x)) +", 60.0, "badtext")
    report = runner.benchmark([_tiny_w6((wrong, no_symbolic, bad_text, base))],
                              peers.select("diffkit-cli"), W6_TINY)
    status = {(r["engine"], r["size"]): r for r in report["timing"]["W6"]["rows"]}
    assert status["diffkit", "cube/o1"]["status"].startswith("not counted")
    assert "verdict disagree" in status["diffkit", "cube/o1"]["status"]
    assert "reverse" in status["diffkit", "cube/o1"]["status"]
    assert "median_s" not in status["diffkit", "cube/o1"]
    assert "without the symbolic reference" in status["diffkit", "twice/o1"]["status"]
    assert "exit status 2" in status["diffkit-cli", "badtext/o1"]["status"]
    assert status["diffkit", "badtext/o1"]["status"] == "ok"  # the engines are judged apart
    assert status["diffkit", "tanh2/o1"]["status"] == "ok"
    holds = {t["target"]: t["holds"] for t in report["targets"]}
    assert holds["cube/o1: dk.compare in process <= 1e+06 s"] is False
    assert holds["tanh2/o1: dk.compare in process <= 1e+06 s"] is True


def _spin(ns, case):
    """A run that never ends on its own and, like compare(), swallows every Exception."""
    def run():
        while True:
            try:
                sum(range(1000))
            except Exception:
                pass

    return run


def _sleep(ns, case):
    return lambda: time.sleep(60)


def _agree(ns, case):
    return lambda: verdicts.Verdict("symbolic")


def test_w6_stops_a_call_at_its_deadline_and_skips_the_family(monkeypatch):
    monkeypatch.setitem(peers.BY_NAME, "sleeper", peers.Peer("sleeper", "sleeps", ("time",)))
    chain = w6_verdict.chain_case("tanh", 2, 1, deadline=0.2, targets={"diffkit": 1e6})
    longer = w6_verdict.chain_case("tanh", 3, 1, deadline=0.2)
    other = w6_verdict.units_case(2, 1, deadline=0.2)
    builders = {"diffkit": _spin, "sleeper": _sleep, "diffkit-cli": _agree}
    handler = signal.getsignal(signal.SIGUSR2)
    start = time.perf_counter()
    report = runner.benchmark([_tiny_w6((chain, longer, other), builders)],
                              peers.select("sleeper,diffkit-cli"), W6_TINY)
    assert time.perf_counter() - start < 10  # three stops of 0.2 s, not a minute's sleep
    assert signal.getsignal(signal.SIGUSR2) is handler
    status = {(r["engine"], r["size"]): r["status"] for r in report["timing"]["W6"]["rows"]}
    for engine in ("diffkit", "sleeper"):
        assert status[engine, "tanh2/o1"] == "no verdict within 0.2 s (stopped there)"
        assert status[engine, "tanh3/o1"] == "skipped: no verdict within 0.2 s at tanh2/o1"
        assert status[engine, "units2/o1"] == "no verdict within 0.2 s (stopped there)"
    assert {status["diffkit-cli", c.name] for c in (chain, longer, other)} == {"ok"}
    holds = {t["target"]: t["holds"] for t in report["targets"]}
    assert holds["tanh2/o1: dk.compare in process <= 1e+06 s"] is False


def test_gradcheck_runs_gradgradcheck_only_at_order_2():
    calls = []

    def check(name, verdict):
        def run(f, inputs, raise_exception=True):
            calls.append((name, f(*inputs)))
            return verdict

        return run

    for order, second, expected in ((1, False, []), (2, True, ["gradgradcheck"]),
                                    (2, False, ["gradgradcheck"])):
        case = w6_verdict.chain_case("sigmoid", 2, order, deadline=60.0)
        fake = SimpleNamespace(
            float64="float64", sigmoid=FLOATS.sigmoid, tanh=FLOATS.tanh,
            tensor=lambda v, dtype=None, requires_grad=False: v,
            autograd=SimpleNamespace(gradcheck=check("gradcheck", True),
                                     gradgradcheck=check("gradgradcheck", second)))
        run = w6_verdict.build_gradcheck(SimpleNamespace(torch=fake), case)
        calls.clear()
        verdict = run()
        assert [name for name, _ in calls] == ["gradcheck"] + expected
        assert close(calls[0][1], case.function(FLOATS)(*case.point))
        assert (verdict.problem is None) == (order == 1 or second)


def test_a_size_past_its_deadline_bounds_the_slope_from_below():
    def build(ns, case):  # instant on 2 variables, never done on 4
        return _agree(ns, case) if len(case.names) == 2 else _spin(ns, case)

    cases = tuple(w6_verdict.units_case(n, 1, deadline=0.2, slope=True) for n in (2, 4, 8))
    report = runner.benchmark([_tiny_w6(cases, {"diffkit": build})], peers.select([]), W6_TINY)
    (target,) = [t for t in report["targets"] if "linear" in t["target"]]
    fast = report["timing"]["W6"]["rows"][0]["median_s"]
    assert target["holds"] is False
    assert f"log-log slope >= {math.log2(0.2 / fast):.2f}" in target["detail"]
    assert "units4/o1 not within 0.2 s" in target["detail"]
