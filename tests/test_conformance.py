"""diffkit conformance: engines driven through adapters, each op judged against diffkit's
reference; the article's engine shows its leaky ReLU bug, its mutation, its recursion depth and
its cost per step; engines built here with one known defect each show exactly that defect."""

import importlib.util
import json
import math
import subprocess
import sys
import types
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from diffkit import conformance
from diffkit.cli import main
from diffkit.errors import InputError
from diffkit.testing import assert_engine_conforms

ARTICLE = str(Path(__file__).resolve().parent.parent / "examples" / "article_engine.py")


# ---- a small tape engine written here, with one defect switched on at a time ----


class Value:
    def __init__(self, value, parents=()):
        self.value = value
        self.parents = parents  # (parent, local derivative) pairs


def tape_engine(name="tape", tanh_local=None, relu_at_zero=0.0, overwrite=False):
    """A correct scalar engine (iterative backward pass over a topological order) unless told:
    `tanh_local(y)` replaces tanh's local derivative 1 - y**2, `relu_at_zero` is relu'(0), and
    `overwrite` stores instead of accumulating a gradient reaching a node twice."""

    def node(value, *parents):
        return Value(value, parents)

    def tanh(a):
        y = math.tanh(a.value)
        return node(y, (a, tanh_local(y) if tanh_local else 1 - y * y))

    def relu(a):
        local = 1.0 if a.value > 0 else (relu_at_zero if a.value == 0 else 0.0)
        return node(max(a.value, 0.0), (a, local))

    def gradients(output, inputs):
        order, seen, stack = [], set(), [(output, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))
                stack.extend((p, False) for p, _ in v.parents)
        grads = {id(output): 1.0}
        for v in reversed(order):
            for parent, local in v.parents:
                contribution = grads.get(id(v), 0.0) * local
                if overwrite:
                    grads[id(parent)] = contribution
                else:
                    grads[id(parent)] = grads.get(id(parent), 0.0) + contribution
        return [grads.get(id(x), 0.0) for x in inputs]

    module = types.ModuleType(name)
    module.NAME = name
    module.variable = lambda x: Value(float(x))
    module.value = lambda v: v.value
    module.gradients = gradients
    module.OPS = {
        "add": lambda a, b: node(a.value + b.value, (a, 1.0), (b, 1.0)),
        "subtract": lambda a, b: node(a.value - b.value, (a, 1.0), (b, -1.0)),
        "multiply": lambda a, b: node(a.value * b.value, (a, b.value), (b, a.value)),
        "negative": lambda a: node(-a.value, (a, -1.0)),
        "tanh": tanh,
        "relu": relu,
    }
    return module


def test_a_correct_tape_engine_conforms():
    result = conformance.run(tape_engine(), quick=True)
    assert result.agree, result.table()
    assert result.ops["relu"].verdict == "convention"
    assert result.ops["relu"].conventions[0]["got"] == 0.0
    assert result.ops["exp"].verdict == "unsupported"
    assert result.properties.max_depth == 10_000 and result.properties.depth_error is None
    assert result.properties.cost_factor < 1.5


def test_a_wrong_local_derivative_is_found_with_the_point_expected_and_got():
    result = conformance.run(tape_engine(tanh_local=lambda y: 1 - y), ops=["tanh"], quick=True)
    tanh = result.ops["tanh"]
    assert tanh.verdict == "WRONG" and not result.agree
    x = tanh.first_wrong["point"][0]
    assert tanh.first_wrong["expected"] == pytest.approx(1 / math.cosh(x) ** 2, rel=1e-14)
    assert tanh.first_wrong["got"] == pytest.approx(1 - math.tanh(x), rel=1e-14)


def test_a_kink_value_outside_the_one_sided_derivatives_is_wrong_inside_is_a_convention():
    inside = conformance.run(tape_engine(relu_at_zero=0.5), ops=["relu"], quick=True)
    assert inside.ops["relu"].verdict == "convention"
    assert inside.ops["relu"].conventions[0]["interval"] == [0.0, 1.0]
    assert inside.ops["relu"].conventions[0]["got"] == 0.5
    outside = conformance.run(tape_engine(relu_at_zero=2.0), ops=["relu"], quick=True)
    first = outside.ops["relu"].first_wrong
    assert outside.ops["relu"].verdict == "WRONG"
    assert first["point"] == [0.0] and first["expected"] == [0.0, 1.0] and first["got"] == 2.0


def test_overwriting_instead_of_accumulating_passes_every_op_and_fails_compositions():
    result = conformance.run(tape_engine(overwrite=True), quick=True)
    assert all(r.verdict != "WRONG" for r in result.ops.values())
    assert result.compositions.wrong > 0 and not result.compositions.explained
    assert not result.agree


def test_diffkit_itself_conforms_with_its_documented_kink_conventions():
    result = conformance.run("diffkit")
    assert result.agree, result.table()
    assert result.properties.max_depth == 100_000
    assert result.compositions.wrong == 0 and result.compositions.checked >= 40
    chosen = {r.name: [c["got"] for c in r.conventions] for r in result.ops.values()}
    # ops.py: relu'(0) = 0, leaky_relu'(0) = alpha, abs'(0) = 0, maximum's ties split 1/2
    assert chosen["relu"] == [0.0] and chosen["leaky_relu"] == [0.01] and chosen["abs"] == [0.0]
    assert set(chosen["maximum"]) == {0.5}


def test_the_article_engine_shows_its_bugs_and_nothing_else(capsys):
    status = main(["conformance", ARTICLE, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1 and out["agree"] is False
    leaky = out["ops"]["leaky_relu"]
    assert leaky["verdict"] == "WRONG"
    assert leaky["first_wrong"]["point"][0] < 0
    assert leaky["first_wrong"]["expected"] == 0.01 and leaky["first_wrong"]["got"] == 1.0
    supported = {"add", "subtract", "multiply", "divide", "negative", "exp", "sigmoid", "relu",
                 "leaky_relu"}
    for name, op in out["ops"].items():
        if name not in supported:
            assert op["verdict"] == "unsupported"
        elif name != "leaky_relu":
            assert op["verdict"] in ("ok", "convention"), name
    properties = out["properties"]
    assert properties["mutates_inputs"] is True and properties["mutating_ops"] == ["leaky_relu"]
    assert properties["repeatable"] is True
    assert properties["max_depth"] == 100
    assert properties["depth_error"].startswith("RecursionError at depth 1000")
    assert 1.8 < properties["cost_factor"] < 2.2  # counted calls, not time: deterministic
    compositions = out["compositions"]
    assert compositions["wrong"] > 0 and compositions["explained"] is True
    assert all("leaky_relu" in example["ops"] for example in compositions["examples"])


def test_the_article_engine_table_and_assertion():
    text = conformance.run(ARTICLE, quick=True).table()
    assert "d/dx at -1.1: expected 0.01, got 1" in text
    assert "leaky_relu mutates its input" in text and "RecursionError at depth 1000" in text
    with pytest.raises(AssertionError, match="leaky_relu WRONG"):
        assert_engine_conforms(ARTICLE, quick=True)


def test_json_and_junit_outputs(tmp_path, capsys):
    junit = tmp_path / "conformance.xml"
    status = main(["conformance", "diffkit", "--ops", "relu,exp", "--quick", "--json",
                   "--junit", str(junit)])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["agree"] is True and set(out["ops"]) == {"relu", "exp"}
    for key in ("engine", "ops", "compositions", "properties", "agree"):
        assert key in out
    for key in ("verdict", "checked", "wrong", "max_rel_error", "first_wrong"):
        assert key in out["ops"]["exp"]
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "0"
    assert {case.get("name") for case in suite} >= {"relu", "exp", "compositions"}


def _write(tmp_path, text):
    path = tmp_path / "adapter.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("OPS = {}\ndef variable(x): return x\ndef value(v): return v\n", "no gradients()"),
    ("OPS = {}\ndef variable(x): return x\ndef value(v): return v\n"
     "def gradients(o, i): return []\n", "its OPS is empty"),
    ("OPS = {'mul': None}\ndef variable(x): return x\ndef value(v): return v\n"
     "def gradients(o, i): return []\n", "did you mean multiply"),
    ("raise RuntimeError('engine broken')\n", "RuntimeError: engine broken"),
    ("OPS = {'exp': lambda a: a}\ndef variable(x): return x\ndef value(v): return 2 * v\n"
     "def gradients(o, i): return [1.0]\n", "value(variable(0.5)) is 1.0"),
])
def test_an_unusable_adapter_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    assert main(["conformance", _write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_adapter_and_unknown_ops_exit_2(tmp_path, capsys):
    assert main(["conformance", str(tmp_path / "none.py")]) == 2
    assert main(["conformance", "diffkit", "--ops", "relu,sort"]) == 2
    assert main(["conformance", "no_such_engine_module"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "sort" in err[1]
    with pytest.raises(InputError):
        conformance.load(tmp_path / "none.py")


def test_points_stay_inside_each_domain_and_reach_kinks():
    assert all(p[0] > 0 for _, p in conformance.points("log"))
    assert ("kink", (0.0,)) in conformance.points("relu")
    assert ("kink", (1.0, 1.0)) in conformance.points("maximum")
    assert all(k != "tail" for k, _ in conformance.points("exp", quick=True))


@pytest.mark.parametrize("engine", ["torch", "jax"])
def test_installed_frameworks_conform(engine):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    # in a process of its own: JAX starts threads, and the suite forks afterwards
    done = subprocess.run([sys.executable, "-m", "diffkit.cli", "conformance", engine, "--quick",
                           "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["agree"] and result["engine"].startswith(engine)
    assert all(r["verdict"] in ("ok", "convention") for r in result["ops"].values())


def test_micrograd_conforms_but_for_its_recursive_backward_pass():
    pytest.importorskip("micrograd")
    result = conformance.run("micrograd", quick=True)
    assert all(r.verdict in ("ok", "convention", "unsupported") for r in result.ops.values())
    assert result.compositions.wrong == 0
    assert result.properties.max_depth == 100
    assert result.properties.depth_error.startswith("RecursionError at depth 1000")
