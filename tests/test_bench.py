"""The benchmark: the article's algorithm is a correct (but path-enumerating) baseline, and the
runner checks, times and reports a tiny configuration end to end. No timing assertions here."""

import json
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import diffkit as dk
from diffkit.bench import article, peers, runner, workloads
from diffkit.cli import main
from diffkit.reverse import _trace
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
        counts.append(article.count_paths(workloads._logistic(n)(x)))
        _, tape, _ = _trace(workloads._logistic(n), (0.3,), (0,), {})
        tape_sizes.append(len(tape))
    growth = [b / a for a, b in zip(counts, counts[1:])]
    assert all(1.9 < g < 2.1 for g in growth[3:])  # the paths double with every step
    steps = np.diff(tape_sizes)
    assert len(set(steps)) == 1  # diffkit's tape grows by the same few entries per step


def test_count_paths_counts_the_pushes_of_gradients():
    x = V(0.3)
    out = workloads._logistic(5)(x)
    pushes = 0

    def push(node):  # the walk of article.gradients, counting its pushes
        nonlocal pushes
        for child, _ in node.local_gradients:
            pushes += 1
            push(child)

    push(out)
    assert pushes == article.count_paths(out)


def _tiny_w1(extra_builders=None):
    builders = {"diffkit": workloads.w1_diffkit, "hand": workloads.w1_hand,
                "article": workloads.w1_article}
    builders.update(extra_builders or {})
    return workloads.Workload("W1", "tiny W1", builders)


def _tiny_w4():
    full = workloads.BY_NAME["W4"]
    return workloads.Workload("W4", full.title, full.builders, sizes=(2, 4, 6),
                              quick_sizes=(2, 4, 6), size_label="n", rtol=full.rtol,
                              max_size=full.max_size)


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
        return workloads.w4_hand(ns, size)

    workload = workloads.Workload("W4", "tiny", {"diffkit": workloads.w4_diffkit,
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


def test_every_workload_agrees_with_the_floor_at_a_small_size():
    """The builders compute the same thing in every installed engine (checked here for the
    engines that need only the core dependencies)."""
    ns = SimpleNamespace(diffkit=dk, numpy=np, article=article)
    small = {"W3": 20, "W4": 8, "W5": "float64", "W5-forward": "float64"}
    for workload in workloads.WORKLOADS:
        size = small.get(workload.name)
        floor = runner.flatten(workload.builders["hand"](ns, size)())
        for engine in ("diffkit", "diffkit-compile"):
            if engine in workload.builders:
                mine = runner.flatten(workload.builders[engine](ns, size)())
                assert runner._disagreement(workload, floor, mine) is None, (workload.name, engine)


def test_float32_stays_float32_in_the_mlp_step():
    ns = SimpleNamespace(diffkit=dk)
    value, grads, new = workloads.w5_diffkit(ns, "float32")()
    assert all(g.dtype == np.float32 for g in grads)
    assert all(p.dtype == np.float32 for p in new)
