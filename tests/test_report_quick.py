"""`diffkit report --quick` shows the article's XOR result honestly (the quick settings keep
every seed's outcome, checked against a hand-written NumPy descent), and index.md puts every
study's headline and key plot on one page, in report order, with the command that rebuilds it."""

import json
import re

import numpy as np
import pytest

from diffkit.experiments import STUDIES, xor
from diffkit.report import pages, plots, writer

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
T = np.array([0.0, 1.0, 1.0, 0.0])


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_outcomes(seeds, checkpoints, lr=0.1):
    """Solved or not (every output within 0.1 of its target) after each number of epochs in
    `checkpoints`, for each seed: full-batch descent on sum (y - t)^2, backprop by hand, all
    seeds at once (one column each)."""
    p = np.array([np.random.default_rng(s).normal(size=9) for s in seeds]).T
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = p
    x1, x2, t = X[:, :1], X[:, 1:], T[:, None]
    found = {}
    for epoch in range(max(checkpoints) + 1):
        h1 = _sigmoid(x1 * w1 + x2 * w2 + b1)
        h2 = _sigmoid(x1 * w3 + x2 * w4 + b2)
        y = _sigmoid(w5 * h1 + w6 * h2 + b3)
        if epoch in checkpoints:
            found[epoch] = [bool(v) for v in np.all(np.abs(y - t) < 0.1, axis=0)]
        dz = 2 * (y - t) * y * (1 - y)
        dz1, dz2 = dz * w5 * h1 * (1 - h1), dz * w6 * h2 * (1 - h2)
        grads = ((dz1 * x1).sum(0), (dz1 * x2).sum(0), (dz2 * x1).sum(0), (dz2 * x2).sum(0),
                 (dz * h1).sum(0), (dz * h2).sum(0), dz1.sum(0), dz2.sum(0), dz.sum(0))
        w1, w2, w3, w4, w5, w6, b1, b2, b3 = (
            q - lr * g for q, g in zip((w1, w2, w3, w4, w5, w6, b1, b2, b3), grads))
    return found


def test_quick_epochs_keep_every_quick_seeds_outcome_and_some_solve():
    seeds = range(xor.QUICK_SEEDS)
    found = numpy_outcomes(seeds, {xor.QUICK_EPOCHS, xor.EPOCHS})
    quick, full = found[xor.QUICK_EPOCHS], found[xor.EPOCHS]
    assert quick == full
    assert 0.5 <= sum(quick) / len(quick) < 1  # the article's result: most solve, not all
    assert xor.QUICK_SEEDS > 2 and xor.QUICK_EPOCHS < xor.EPOCHS


def test_quick_run_takes_the_first_seeds_and_compares_styles_on_the_first(monkeypatch):
    calls = []

    def fake(seed, epochs=xor.EPOCHS, lr=xor.LR, styles=xor.STYLES):
        calls.append((seed, epochs, styles))
        runs = [{"style": s, "seed": seed, "solved": seed % 2 == 1, "trajectory_max_diff": None}
                for s in styles]
        return {"runs": runs, "trajectory_max_diff": 0.0 if len(styles) == 2 else None,
                "timing": {s: 0.0 for s in styles}}

    monkeypatch.setattr(xor, "train_seed", fake)
    result = xor.run(quick=True, workers=1)
    assert calls == [(s, xor.QUICK_EPOCHS, xor.STYLES if s < xor.QUICK_BATCHED_SEEDS
                      else ("scalar",)) for s in range(xor.QUICK_SEEDS)]
    assert result["success_rate"] == sum(s % 2 for s in range(xor.QUICK_SEEDS)) / xor.QUICK_SEEDS
    assert result["full"] == {"seeds": xor.FULL_SEEDS, "epochs": xor.EPOCHS,
                              "batched_seeds": xor.FULL_BATCHED_SEEDS}
    calls.clear()
    xor.run(workers=1)
    assert calls == [(s, xor.EPOCHS, xor.STYLES if s < xor.FULL_BATCHED_SEEDS else ("scalar",))
                     for s in range(xor.FULL_SEEDS)]


def test_quick_xor_page_says_what_changed():
    quick = xor.run(quick=True, seeds=3, epochs=200, workers=1)
    assert [(r["seed"], r["style"]) for r in quick["runs"]] == [
        (0, "scalar"), (0, "batched"), (1, "scalar"), (2, "scalar")]
    assert quick["trajectory_max_diff"] < 1e-12
    page = pages.render("xor", quick, None)
    assert "**Quick mode**" in page
    assert "3 seeds (seeds 0..2) instead of 24" in page
    assert "200 epochs instead of 30000" in page
    assert "the batched graph for seed 0 only" in page
    assert "never chosen by their outcome" in page
    assert pages.headline("xor", quick).startswith(
        "3 seeds (the batched graph on seed 0), 200 epochs: success rate")
    full = xor.run(seeds=1, epochs=200, workers=1)
    assert "Quick mode" not in pages.render("xor", full, None)
    assert pages.headline("xor", full).startswith("1 seeds x 2 styles, 200 epochs")


def test_report_command():
    assert writer.report_command() == "diffkit report"
    assert writer.report_command("reports", quick=True) == "diffkit report --quick"
    assert (writer.report_command("/tmp/r", only="swell,agreement", seeds=3)
            == "diffkit report --only agreement,swell --seeds 3 --out /tmp/r")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A report folder with every study but vanishing (the slowest), XOR kept tiny."""
    out = tmp_path_factory.mktemp("reports")
    real = writer.run_study

    def small(name, **params):
        if name == "xor":
            params.update(seeds=2, epochs=300, workers=1)
        return real(name, **params)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "run_study", small)
        for name in ("accuracy", "swell", "xor", "agreement"):  # not in report order
            writer.write_study(name, out, quick=True)
    writer.write_index(out, "diffkit report --quick --out somewhere")
    return out


def test_index_has_every_headline_in_report_order(report_dir):
    index = (report_dir / "index.md").read_text()
    rows = [line for line in index.splitlines() if line.startswith("| **[")]
    names = [re.match(r"\| \*\*\[(\w+)\]", line).group(1) for line in rows]
    assert names == [s for s in STUDIES if s in ("accuracy", "swell", "xor", "agreement")]
    assert STUDIES.index("swell") < STUDIES.index("accuracy")  # ORDER, not the order written
    for name, line in zip(names, rows):
        result = json.loads((report_dir / f"{name}.json").read_text())
        assert pages.headline(name, result).replace("|", "\\|") in line
        assert f"({name}.md)" in line and f"[numbers]({name}.json)" in line
        assert "(--quick)" in line
    assert "`diffkit report --quick --out somewhere`" in index
    assert f"Regenerate all of it with `diffkit report --out {report_dir}`" in index


@pytest.mark.skipif(not plots.available(), reason="matplotlib is not installed")
def test_index_shows_each_key_plot_inline_and_links_every_png(report_dir):
    index = (report_dir / "index.md").read_text()
    rows = {re.match(r"\| \*\*\[(\w+)\]", line).group(1): line
            for line in index.splitlines() if line.startswith("| **[")}
    for name, line in rows.items():
        key = pages.page(name).KEY_PLOT
        assert (report_dir / key).read_bytes()[:4] == b"\x89PNG"
        assert f'<img src="{key}" width="{writer.INDEX_IMAGE_WIDTH}"' in line
        for png in report_dir.glob(f"{name}*.png"):
            assert f"[{png.name}]({png.name})" in line
    # the agreement page itself stays without a plot; only the index draws one
    assert "agreement.png" not in (report_dir / "agreement.md").read_text()


def test_index_without_plots_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    writer.write_study("swell", tmp_path, quick=True)
    index = writer.write_index(tmp_path)
    assert "[swell](swell.md)" in index and "(no plot)" in index and "<img" not in index
