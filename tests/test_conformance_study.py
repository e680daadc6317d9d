"""The conformance study (diffkit report's fifth): the matrix of ops by engines, the kink
conventions and the properties, checked against facts established outside the study - the
article's engine's own code, closed-form one-sided derivatives, torch and JAX called directly -
and its page and headline against the numbers they are generated from."""

import copy
import importlib.util
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest

import diffkit as dk
from diffkit import conformance
from diffkit.errors import InputError
from diffkit.experiments import conformance as study
from diffkit.report import pages, plots, writer
from diffkit.report.pages import TIMING_MARK
from diffkit.report.studies import conformance as page

ARTICLE = Path(__file__).resolve().parent.parent / "examples" / "article_engine.py"
# closed forms: the one-sided derivatives at each op's switch, per input
ONE_SIDED = {"relu": {"d/dx": [0.0, 1.0]}, "leaky_relu": {"d/dx": [0.01, 1.0]},
             "abs": {"d/dx": [-1.0, 1.0]}, "maximum": {"d/dx": [0.0, 1.0], "d/dy": [0.0, 1.0]},
             "elu": {"d/dx": [1.0, 1.0]}}


def strict(text):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def article_module():
    spec = importlib.util.spec_from_file_location("article_engine_for_test", ARTICLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick():
    """The quick study as the report writes it (through strict JSON)."""
    return strict(writer.to_json(study.run(quick=True)))


# ---- the article's engine: facts from its own code, not from diffkit ----


def test_the_article_engine_column_shows_its_leaky_relu_bug(quick):
    engine = article_module()
    x = engine.Variable(-2.5)
    out = engine.leaky_ReLu(x)
    assert out is x and x.value == -0.025  # returns its input, scaled in place
    entry = quick["engines"]["article"]
    leaky = entry["ops"]["leaky_relu"]
    assert leaky["verdict"] == "WRONG"
    w = leaky["first_wrong"]
    assert w["point"][0] < 0 and w["what"] == "d/dx"
    assert w["expected"] == pytest.approx(0.01, rel=1e-12)  # leaky ReLU's slope, alpha = 0.01
    assert w["got"] == 1.0  # d out/d x with out = x itself
    assert entry["properties"]["mutates_inputs"] is True
    assert entry["properties"]["mutating_ops"] == ["leaky_relu"]
    assert entry["agree"] is False


def test_the_article_engine_column_marks_every_op_it_lacks_unsupported(quick):
    has = set(article_module().OPS)
    assert has == {"add", "subtract", "multiply", "divide", "negative", "exp", "sigmoid",
                   "relu", "leaky_relu"}
    for op in quick["ops"]:
        verdict = quick["engines"]["article"]["ops"][op]["verdict"]
        assert (verdict == "unsupported") == (op not in has), op
        assert (page.cell(quick["engines"]["article"]["ops"][op]) == page.UNSUPPORTED) == (
            op not in has)
    for op in has - {"leaky_relu", "relu"}:
        assert quick["engines"]["article"]["ops"][op]["verdict"] == "ok", op


def test_the_article_engine_properties_recursion_and_paths(quick):
    engine = article_module()
    p = quick["engines"]["article"]["properties"]

    def chain(depth):
        x = engine.Variable(0.5)
        y = x
        for _ in range(depth):
            y = engine.neg(y)
        return x, y

    x, y = chain(100)
    assert engine.get_gradients(y)[x] == 1.0  # (-1)^100
    with pytest.raises(RecursionError):
        engine.get_gradients(chain(1000)[1])
    assert p["max_depth"] == 100 and p["depth_error"].startswith("RecursionError at depth 1000")
    # every path: the logistic map has 2^(n-1) input-output paths, so about 2x per step
    assert p["cost_measure"] == "Python calls" and 1.8 <= p["cost_factor"] <= 2.2
    assert p["cost_conforms"] is False


# ---- diffkit's column and the kinks ----


def test_diffkit_column_is_all_ok_or_convention(quick):
    entry = quick["engines"]["diffkit"]
    assert entry["agree"] is True
    for op, result in entry["ops"].items():
        assert result["verdict"] in ("ok", "convention"), op
        assert result["wrong"] == 0 and result["first_wrong"] is None
        # a convention only where the one-sided derivatives differ
        has_kink = op in ONE_SIDED and any(lo < hi for lo, hi in ONE_SIDED[op].values())
        assert (result["verdict"] == "convention") == has_kink, op
    assert entry["properties"]["failures"] == []


def test_kinks_carry_the_closed_form_one_sided_derivatives(quick):
    assert set(quick["kinks"]) == set(ONE_SIDED)
    for op, kinks in quick["kinks"].items():
        for k in kinks:
            assert k["one_sided"] == ONE_SIDED[op]
            if op == "maximum":
                assert k["point"][0] == k["point"][1]  # a tie
            else:
                assert k["point"] == [0.0]


def test_every_convention_lies_between_the_one_sided_derivatives(quick):
    for label in quick["present"]:
        for op, result in quick["engines"][label]["ops"].items():
            for c in result["conventions"]:
                low, high = ONE_SIDED[op][c["what"]]
                assert low <= c["got"] <= high and c["interval"] == [low, high]


def test_diffkit_kink_values_are_what_diffkit_returns(quick):
    conventions = {op: {(tuple(c["point"]), c["what"]): c["got"]
                        for c in quick["engines"]["diffkit"]["ops"][op]["conventions"]}
                   for op in ONE_SIDED}
    assert conventions["relu"] == {((0.0,), "d/dx"): float(dk.grad(dk.relu)(0.0))}
    assert conventions["abs"] == {((0.0,), "d/dx"): float(dk.grad(dk.abs)(0.0))}
    assert conventions["leaky_relu"] == {((0.0,), "d/dx"): float(dk.grad(dk.leaky_relu)(0.0))}
    for point in ((1.0, 1.0), (0.0, 0.0), (-2.0, -2.0)):
        dx, dy = dk.grad(dk.maximum, (0, 1))(*point)
        assert conventions["maximum"][(point, "d/dx")] == float(dx)
        assert conventions["maximum"][(point, "d/dy")] == float(dy)


# ---- absent engines, the engines parameter ----


def test_an_unimportable_engine_is_listed_absent_with_how_to_install(monkeypatch):
    for name in ["micrograd", *[m for m in sys.modules if m.startswith("micrograd.")]]:
        monkeypatch.setitem(sys.modules, name, None)  # importing micrograd now fails
    monkeypatch.delitem(sys.modules, "diffkit.adapters.micrograd", raising=False)
    result = study.run(quick=True, engines=["diffkit", "micrograd"])
    assert result["present"] == ["diffkit"] and set(result["engines"]) == {"diffkit"}
    assert set(result["absent"]) == {"micrograd"}
    assert result["absent"]["micrograd"]["install"] == "pip install micrograd"
    assert result["absent"]["micrograd"]["reason"] == "micrograd is not installed"
    lines, _ = page.sections(result)
    text = "\n".join(lines)
    assert "**micrograd** is absent" in text and "pip install micrograd" in text
    header = next(line for line in lines if line.startswith("| op "))
    assert "diffkit" in header and "micrograd" not in header  # no column for it
    assert "absent: micrograd" in page.headline(result)


def test_without_a_source_checkout_the_article_engine_is_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "ARTICLE_PLACES", (tmp_path / "article_engine.py",
                                                   Path("examples") / "article_engine.py"))
    monkeypatch.chdir(tmp_path)
    result = study.run(quick=True, engines=["article"])
    assert result["present"] == [] and str(tmp_path) not in json.dumps(result["absent"])
    assert "checkout" in result["absent"]["article"]["install"]
    assert "the article's engine** is absent" in "\n".join(page.sections(result)[0])


def test_a_plain_install_run_from_the_checkout_finds_the_article_engine(monkeypatch, tmp_path):
    # `pip install .` puts the package in site-packages, without examples/; the README's main
    # command runs `diffkit report` from the checkout, whose examples/ holds the engine
    monkeypatch.setattr(study, "ARTICLE_PLACES", (tmp_path / "article_engine.py",
                                                   Path("examples") / "article_engine.py"))
    monkeypatch.chdir(ARTICLE.parent.parent)
    result = study.run(quick=True, engines=["article"])
    assert result["present"] == ["article"]
    assert result["engines"]["article"]["ops"]["leaky_relu"]["verdict"] == "WRONG"


def test_engines_may_map_labels_to_adapters_and_unknown_names_are_refused():
    result = study.run(quick=True, engines={"torch": "diffkit_no_such_engine_module"})
    assert result["present"] == []
    assert result["absent"]["torch"]["install"].startswith("pip install torch")
    assert "download.pytorch.org/whl/cpu" in result["absent"]["torch"]["install"]
    lines, timing = page.sections(result)
    assert "No engine could be loaded." in lines and page.plots(result, Path(".")) == []
    assert page.headline(result).startswith("0 engines x 23 ops: none conforms")
    assert "- Not requested: diffkit, the article's engine, micrograd and jax." in lines
    with pytest.raises(InputError, match="engines names nope"):
        study.run(quick=True, engines=["diffkit", "nope"])


def test_quick_mode_runs_the_plain_python_engines_and_says_so(quick):
    assert quick["parameters"]["engines"] == ["diffkit", "article", "micrograd"] or (
        importlib.util.find_spec("micrograd") is None)
    assert quick["parameters"]["not_requested"] == ["torch", "jax"]
    lines, _ = page.sections(quick)
    text = "\n".join(lines)
    assert "**Quick mode** changed this page" in text
    assert "Not run in quick mode: torch and jax" in text
    points = sum(quick["parameters"]["points"].values())
    full = sum(len(conformance.points(op)) for op in conformance.SCALAR_OPS)
    assert points < full and f"{points} points over the 23 ops instead of {full}" in text
    checked = quick["engines"]["diffkit"]["ops"]
    assert sum(checked[op]["checked"] for op in quick["ops"]) == points


# ---- the page and headline are generated from the numbers ----


def test_page_and_headline_follow_the_numbers(quick):
    changed = copy.deepcopy(quick)
    relu = changed["engines"]["article"]["ops"]["relu"]
    relu["conventions"][0]["got"] = 1.0  # as if it chose the right-hand derivative
    others = [x for x in quick["present"] if x != "article"]  # diffkit, micrograd if installed
    before, after = page.headline(quick), page.headline(changed)
    assert "relu'(0)" not in before
    assert f"relu'(0) = 0 ({', '.join(others)}) or 1 (the article's engine)" in after
    sentence = [line for line in page.kink_sentences(changed) if "**relu'(0)**" in line][0]
    assert f"0 in {' and '.join(others)}; 1 in the article's engine" in sentence
    assert page.cell(relu) == "convention (1)"
    changed["engines"]["diffkit"]["ops"]["tanh"].update(
        verdict="WRONG", wrong=1, first_wrong={"point": [0.4], "kind": "generic",
                                               "what": "d/dx", "expected": 0.85, "got": 0.5})
    changed["engines"]["diffkit"]["agree"] = False
    text = "\n".join(page.sections(changed)[0])
    assert "Diffkit" not in text and "**diffkit does not**: tanh WRONG" in text
    assert "diffkit, **tanh**: 1 of 2 points wrong" in text
    assert "expected 0.85, got 0.5" in text
    assert "diffkit: tanh WRONG" in page.headline(changed)


def test_kink_sentences_state_every_engines_value(quick):
    sentences = page.kink_sentences(quick)
    relu = [s for s in sentences if "**relu'(0)**" in s][0]
    values = {label: quick["engines"][label]["ops"]["relu"]["conventions"][0]["got"]
              for label in quick["present"]}
    assert set(values.values()) == {0.0}  # relu'(0) = 0 in all three, measured
    assert "between the one-sided derivatives 0 and 1: 0 in diffkit" in relu
    leaky = [s for s in sentences if "**leaky_relu'(0)**" in s][0]
    assert "0.01 in diffkit" in leaky and "1 in the article's engine" in leaky
    assert "is WRONG" in leaky
    elu = [s for s in sentences if s.startswith("- **elu**")][0]
    assert "nothing to choose" in elu


def test_the_rendered_page_keeps_run_to_run_numbers_below_the_timing_mark(quick):
    changed = copy.deepcopy(quick)
    changed["timing"]["seconds"] = 987.654
    for entry in changed["timing"]["engines"].values():
        entry["seconds"] = 876.543
    text = pages.render("conformance", changed, [])
    above, below = text.split(TIMING_MARK)
    assert text.startswith(f"# {page.TITLE}\n")
    assert "987.7 s" in below and "876.54" in below
    assert "987" not in above and "876" not in above


def test_quick_study_is_reproducible_outside_timing(quick):
    again = strict(writer.to_json(study.run(quick=True)))
    assert {k: v for k, v in again.items() if k != "timing"} == {
        k: v for k, v in quick.items() if k != "timing"}
    assert set(quick["timing"]["engines"]) == set(quick["present"])


@pytest.mark.skipif(not plots.available(), reason="matplotlib not installed")
def test_the_heat_map_is_drawn(quick, tmp_path):
    assert page.plots(quick, tmp_path) == ["conformance.png"] == [page.KEY_PLOT]
    assert (tmp_path / "conformance.png").read_bytes()[:4] == b"\x89PNG"


# ---- torch and JAX, called directly (skipped where they are not installed) ----


def _kinks(result, label):
    return {op: {(tuple(c["point"]), c["what"]): c["got"]
                 for c in result["engines"][label]["ops"][op]["conventions"]}
            for op in ("relu", "abs", "leaky_relu", "maximum")}


def test_torch_column_and_its_kink_values():
    torch = pytest.importorskip("torch")
    functional = pytest.importorskip("torch.nn.functional")
    result = study.run(quick=True, engines=["torch"])
    entry = result["engines"]["torch"]
    assert entry["agree"] is True
    assert all(r["verdict"] in ("ok", "convention") for r in entry["ops"].values())

    def derivative(fn, *point):
        xs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point]
        return [float(g) for g in torch.autograd.grad(fn(*xs), xs)]

    kinks = _kinks(result, "torch")
    assert kinks["relu"][((0.0,), "d/dx")] == derivative(torch.relu, 0.0)[0]
    assert kinks["abs"][((0.0,), "d/dx")] == derivative(torch.abs, 0.0)[0]
    assert kinks["leaky_relu"][((0.0,), "d/dx")] == derivative(
        lambda x: functional.leaky_relu(x, 0.01), 0.0)[0]
    assert [kinks["maximum"][((1.0, 1.0), w)] for w in ("d/dx", "d/dy")] == derivative(
        torch.maximum, 1.0, 1.0)
    # the time-measured cost factor is in timing only, its verdict in properties
    p = entry["properties"]
    assert p["cost_measure"] == "time" and p["cost_factor"] is None and p["cost_conforms"]
    assert result["timing"]["engines"]["torch"]["cost_factor"] <= conformance.COST_LIMIT


JAX_SCRIPT = """
import json
import jax
from diffkit.experiments import conformance as study
from diffkit.report.writer import to_json

result = json.loads(to_json(study.run(quick=True, engines=["jax"])))  # switches on float64
import jax.numpy as jnp


def derivative(fn, *point):
    found = jax.grad(fn, tuple(range(len(point))))(*(jnp.float64(v) for v in point))
    return [float(g) for g in found]


direct = {"relu": derivative(jax.nn.relu, 0.0), "abs": derivative(jnp.abs, 0.0),
          "leaky_relu": derivative(lambda x: jax.nn.leaky_relu(x, 0.01), 0.0),
          "maximum": derivative(jnp.maximum, 0.0, 0.0)}
print(json.dumps({"result": result, "direct": direct}))
"""


def test_jax_column_and_its_kink_values():
    pytest.importorskip("jax")
    # in a process of its own: once JAX's threads run here, every later os.fork() of the suite
    # (worker processes) would warn that it may deadlock
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    found = strict(done.stdout)
    result, direct = found["result"], found["direct"]
    entry = result["engines"]["jax"]
    assert entry["agree"] is True
    assert all(r["verdict"] in ("ok", "convention") for r in entry["ops"].values())
    kinks = _kinks(result, "jax")
    assert [kinks["relu"][((0.0,), "d/dx")]] == direct["relu"]
    assert [kinks["abs"][((0.0,), "d/dx")]] == direct["abs"]
    assert [kinks["leaky_relu"][((0.0,), "d/dx")]] == direct["leaky_relu"]
    assert [kinks["maximum"][((0.0, 0.0), w)] for w in ("d/dx", "d/dy")] == direct["maximum"]
    assert entry["properties"]["max_depth"] == conformance.DEPTH_REQUIRED


# ---- what the study relies on in diffkit.conformance ----


def test_cost_factor_counts_a_warm_call():
    """An engine whose first gradients() call does a burst of extra work (JAX compiling) is
    still measured by its calls per step: about 1 for diffkit's tape underneath."""
    base = conformance.load("diffkit")
    state = {"first": True}

    def gradients(output, inputs):
        if state["first"]:
            state["first"] = False
            sum(math.sqrt(k) for k in range(200_000))  # a one-time burst of calls
        return base.gradients(output, inputs)

    module = types.ModuleType("bursty")
    module.variable, module.value, module.OPS = base.variable, base.value, base.ops
    module.gradients = gradients
    adapter = conformance.load(module)  # its smoke test makes the first call
    state["first"] = True
    factor, note = conformance.cost_factor(adapter, quick=True)
    assert note.startswith("Python calls") and factor < conformance.COST_LIMIT


def test_deepest_chain_tries_the_depths_given():
    assert conformance.deepest_chain("diffkit", depths=(10, 100)) == (100, "negative", None)
    depth, _, error = conformance.deepest_chain(str(ARTICLE), depths=(10, 2000))
    assert depth == 10 and error.startswith("RecursionError at depth 2000")
