"""One Markdown page per study: what was run, a paragraph generated from the numbers, the
tables, the plots, and a timing section marked as the only part that varies between runs.
Each study's page lives in `diffkit.report.studies.NAME`; this module lays the pages out."""

from __future__ import annotations

import importlib
from types import ModuleType

TIMING_MARK = "<!-- timing: varies from run to run; everything above is deterministic -->"


def page(name: str) -> ModuleType:
    """Return the page module of study `name`, `diffkit.report.studies.NAME`.

    Example:
        >>> page("swell").TITLE
        'Expression swell: the logistic map'
    """
    return importlib.import_module(f"diffkit.report.studies.{name}")


def render(name: str, result: dict, plots) -> str:
    """Return the Markdown page of study `name`; `plots` lists PNG names, None if skipped.

    Example:
        >>> from diffkit.experiments import run_study
        >>> render("xor", run_study("xor", seeds=1, epochs=3, workers=1), None).splitlines()[0]
        '# XOR: the 2-2-1 sigmoid network, trained two ways'
    """
    study = page(name)
    sections, timing = study.sections(result)
    lines = [f"# {study.TITLE}", "", *sections]
    if plots is None:
        lines += ["", "## Plots", "", "Plots were skipped: matplotlib is not installed (`pip "
                  "install \"diffkit[plots]\"` and run `diffkit report` again)."]
    elif plots:
        lines += ["", "## Plots", "", *[f"![{p}]({p})" for p in plots]]
    lines += ["", TIMING_MARK, "## Timing (varies from run to run)", "", *timing, ""]
    return "\n".join(lines)


def headline(name: str, result: dict) -> str:
    """Return one line that sums up a study's result, for the index.

    Example:
        >>> headline("xor", {"seeds": 24, "epochs": 30000, "success_rate": 0.75,
        ...                  "trajectory_max_diff": 1e-14})
        '24 seeds x 2 styles, 30000 epochs: success rate 75%; styles agree to 1e-14'
    """
    return page(name).headline(result)
