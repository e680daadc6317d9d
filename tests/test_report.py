"""`diffkit report`: argument checking, strict deterministic JSON and Markdown, the quick run
end to end, and the committed reports against a fresh run of one study."""

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

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


def test_json_is_strict():
    text = writer.to_json({"a": float("nan"), "b": [float("-inf"), 1], "c": {"d": True}})
    assert json.loads(text) == {"a": None, "b": [None, 1], "c": {"d": True}}
    assert "NaN" not in text and "Infinity" not in text


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
            ja, jb = json.loads(a), json.loads(b)
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
        numbers = json.loads((out / f"{name}.json").read_text())
        assert f"({name}.md)" in index
        assert numbers["parameters"]["quick"] is True
        assert TIMING_MARK in page
    if plots.available():
        for png in ("vanishing_layers.png", "vanishing_products.png", "xor_loss.png",
                    "xor_surface.png", "swell.png"):
            assert (out / png).read_bytes()[:4] == b"\x89PNG"
            assert f"({png})" in index
    agreement = json.loads((out / "agreement.json").read_text())
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
    committed = json.loads((REPORTS / "vanishing.json").read_text())
    assert committed["parameters"]["quick"] is False and committed["inits"] >= 1000
    check.assert_report_matches("vanishing", REPORTS)


@pytest.mark.skipif(not (REPORTS / "index.md").exists(), reason="no committed reports")
def test_committed_reports_are_complete_and_full():
    index = (REPORTS / "index.md").read_text()
    for name in STUDIES:
        numbers = json.loads((REPORTS / f"{name}.json").read_text())
        assert numbers["parameters"]["quick"] is False
        assert f"({name}.md)" in index
    xor = json.loads((REPORTS / "xor.json").read_text())
    assert xor["seeds"] >= 20 and xor["epochs"] == 30_000
    assert xor["trajectory_max_diff"] < 1e-9
    assert all(min(r["outputs"]["01"], r["outputs"]["10"]) > 0.9
               and max(r["outputs"]["00"], r["outputs"]["11"]) < 0.1
               for r in xor["runs"] if r["solved"])
    agreement = json.loads((REPORTS / "agreement.json").read_text())
    assert agreement["all_agree"] is True and agreement["random_points"] >= 5


def test_assert_report_matches_reports_differences(tmp_path):
    def study(scale=1.0):
        return {"value": 2.0 * scale, "timing": {"seconds": 0.1}}

    (tmp_path / "study.json").write_text(writer.to_json({"value": 2.0, "timing": {"s": 9.0}}))
    check.assert_report_matches(study, tmp_path)
    with pytest.raises(AssertionError, match="value"):
        check.assert_report_matches(study, tmp_path, scale=1.5)
