"""A study is two modules: diffkit/experiments/NAME.py (ORDER, run) and
diffkit/report/studies/NAME.py (TITLE, sections, headline, optional plots). Every study has
both, STUDIES follows ORDER, and a new study made of just those two modules (written into a
temporary folder added to the two packages' __path__) runs through `diffkit report` end to end."""

import importlib
import json
import pkgutil
import sys

import pytest

import diffkit.experiments
import diffkit.report.studies
from diffkit import cli
from diffkit.errors import InputError
from diffkit.experiments import STUDIES, run_study
from diffkit.report import pages, plots, writer
from diffkit.report.pages import TIMING_MARK

# The positions study_interface.md gives the studies that existed when STUDIES was derived.
POSITIONS = {"agreement": 10, "vanishing": 20, "xor": 30, "swell": 40, "accuracy": 50,
             "conformance": 60}


def test_studies_are_the_modules_with_an_order_sorted_by_it():
    orders = [importlib.import_module(f"diffkit.experiments.{n}").ORDER for n in STUDIES]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for name, order in POSITIONS.items():
        assert importlib.import_module(f"diffkit.experiments.{name}").ORDER == order
        assert name in STUDIES
    others = [m.name for m in pkgutil.iter_modules(diffkit.experiments.__path__)
              if m.name not in STUDIES]
    assert "catalog" in others
    for name in others:  # a module without ORDER is not a study
        assert not hasattr(importlib.import_module(f"diffkit.experiments.{name}"), "ORDER")


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_has_both_modules(name):
    study = importlib.import_module(f"diffkit.experiments.{name}")
    assert isinstance(study.ORDER, int) and callable(study.run)
    page = pages.page(name)
    assert isinstance(page.TITLE, str) and page.TITLE.strip()
    assert callable(page.sections) and callable(page.headline)
    for optional in ("plots", "index_plot"):
        assert callable(getattr(page, optional, print))  # absent is fine, not callable is not
    key = getattr(page, "KEY_PLOT", f"{name}.png")
    assert key == f"{name}.png" or key.startswith(f"{name}_") and key.endswith(".png")


def test_every_page_module_renders_a_study():
    names = [m.name for m in pkgutil.iter_modules(diffkit.report.studies.__path__)]
    assert sorted(names) == sorted(STUDIES)


EXPERIMENT = '''
import os

from diffkit.errors import InputError

ORDER = 35


def run(quick=False, seeds=None, progress=None, **params):
    if seeds == 13:
        raise InputError("13 seeds are unlucky")
    if seeds == 66:
        os._exit(3)  # a study whose process dies
    count = seeds or (2 if quick else 5)
    return {"parameters": {"quick": quick, "seeds": count},
            "squares": [k * k for k in range(count)], "timing": {"seconds": 0.25}}
'''

PAGE = '''
from diffkit.report.plots import figure, save

TITLE = "Toy: the first squares"
KEY_PLOT = "toy_study_line.png"


def sections(result):
    return ([f"Squares: {', '.join(str(s) for s in result['squares'])}."],
            [f"{result['timing']['seconds']} s."])


def headline(result):
    return f"{len(result['squares'])} squares | the last {result['squares'][-1]}"


def plots(result, out):
    drawn = []
    for suffix in ("", "_line"):
        fig = figure(3, 2)
        fig.add_subplot().plot(result["squares"])
        drawn.append(save(fig, out, f"toy_study{suffix}.png"))
    return drawn
'''


@pytest.fixture
def toy_study(tmp_path, monkeypatch):
    """The two modules of a study "toy_study", in folders added to the two packages' __path__
    for this test only."""
    for package, text in ((diffkit.experiments, EXPERIMENT), (diffkit.report.studies, PAGE)):
        folder = tmp_path / package.__name__
        folder.mkdir()
        (folder / "toy_study.py").write_text(text)
        # its twin, one place later: two studies to run side by side
        (folder / "toy_twin.py").write_text(text.replace("ORDER = 35", "ORDER = 36"))
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    importlib.invalidate_caches()
    yield "toy_study"
    for package in ("diffkit.experiments", "diffkit.report.studies"):
        for name in ("toy_study", "toy_twin"):
            sys.modules.pop(f"{package}.{name}", None)


def test_a_new_study_needs_only_its_two_modules(toy_study, tmp_path, capsys):
    studies = diffkit.experiments.STUDIES
    assert studies.index("xor") < studies.index(toy_study) < studies.index("swell")
    assert writer.selected_studies("toy_study, agreement") == ["agreement", toy_study]
    assert run_study(toy_study, seeds=3)["squares"] == [0, 1, 4]

    out = tmp_path / "out"
    assert cli.main(["report", "--quick", "--only", toy_study, "--out", str(out)]) == 0
    assert f"wrote {out / toy_study}.md" in capsys.readouterr().err
    assert json.loads((out / "toy_study.json").read_text())["squares"] == [0, 1]
    page = (out / "toy_study.md").read_text()
    assert page.startswith("# Toy: the first squares\n\nSquares: 0, 1.\n")
    assert page.split(TIMING_MARK)[1].strip().endswith("0.25 s.")
    index = (out / "index.md").read_text()
    row = next(line for line in index.splitlines() if line.startswith("| **[toy_study]"))
    assert "(--quick)" in row and "2 squares \\| the last 1" in row  # a bar is escaped
    assert "[numbers](toy_study.json)" in row
    if plots.available():
        assert "![toy_study.png](toy_study.png)\n![toy_study_line.png](toy_study_line.png)" in page
        assert (out / "toy_study_line.png").read_bytes()[:4] == b"\x89PNG"
        assert '<img src="toy_study_line.png"' in row and "[toy_study.png](toy_study.png)" in row
    else:
        assert "Plots were skipped" in page and "(no plot)" in row


def test_a_study_without_plots(toy_study, tmp_path, monkeypatch):
    monkeypatch.delattr(pages.page(toy_study), "plots")
    monkeypatch.delattr(pages.page(toy_study), "KEY_PLOT")
    result = writer.write_study(toy_study, tmp_path, seeds=4)
    assert result["squares"] == [0, 1, 4, 9] and not list(tmp_path.glob("*.png"))
    assert "## Plots" not in (tmp_path / "toy_study.md").read_text()
    assert "(no plot)" in writer.write_index(tmp_path)
    with pytest.raises(InputError, match="unknown study 'toy'; use one of .*toy_study"):
        run_study("toy")


def test_a_removed_study_leaves_studies(toy_study):
    assert toy_study in diffkit.experiments.STUDIES
    diffkit.experiments.__path__.pop()
    assert toy_study not in diffkit.experiments.STUDIES


def test_studies_side_by_side_give_what_one_process_gives(toy_study):
    names = ["toy_twin", "toy_study"]
    messages = []
    together = list(writer.side_by_side(names, seeds=4, progress=messages.append))
    assert [name for name, _ in together] == names  # the order asked for, not of finishing
    for name, result in together:
        assert result == run_study(name, seeds=4)
        assert f"{name}: running" in messages and any(
            m.startswith(f"{name}: finished in ") for m in messages)
    alone = list(writer.side_by_side(names, seeds=4, processes=1))
    assert alone == [(name, None) for name in names]  # each runs in the caller, in turn


def test_a_failing_study_side_by_side_fails_the_report_in_one_line(toy_study):
    with pytest.raises(InputError, match="13 seeds are unlucky"):
        list(writer.side_by_side(["toy_study", "toy_twin"], seeds=13))
    with pytest.raises(RuntimeError, match="the toy_study study's process died .exit status 3"):
        list(writer.side_by_side(["toy_study", "toy_twin"], seeds=66))
