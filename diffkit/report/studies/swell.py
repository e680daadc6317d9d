"""The expression-swell study's page: the logistic map's derivative in SymPy (raw, after cse)
against diffkit's tape and the number of paths; Baydin et al.'s Table 1."""

from __future__ import annotations

from pathlib import Path

from diffkit.report.plots import figure, positive, save
from diffkit.report.tables import markdown_table, number

TITLE = "Expression swell: the logistic map"
KEY_PLOT = "swell.png"


def headline(result: dict) -> str:
    """Return the index line: the sizes at the largest n, and the Baydin n = 4 check."""
    last = result["logistic_map"][-1]
    return (f"n = {last['n']}: SymPy derivative {last['symbolic_ops']} ops "
            f"({last['symbolic_ops_cse']} after cse), tape {last['tape_nodes']} entries, "
            f"{last['paths']} paths; Baydin n = 4 check: {number(result['baydin']['matches'])}")


def sections(r):
    """Return the page's Markdown lines: the body, and the timing section's."""
    rows = r["logistic_map"]
    last, prev = rows[-1], rows[-2]
    b = r["baydin"]
    body = [
        "The logistic map l_1 = x, l_(k+1) = 4 l_k (1 - l_k) and its derivative d l_n/dx. "
        "SymPy's derivative (sympy.diff of the traced expression, `count_ops`) swells, "
        "common-subexpression elimination (`cse`) shrinks it back, and diffkit's tape grows "
        "by the same few entries per step. A backward pass "
        "that enumerates paths, as the article's does, would walk every input-to-output path: "
        "their number is counted on the tape by dynamic programming (each entry's count is the "
        "sum of its operands'), never by walking them, and equals 2^(n-1).",
        "",
        f"At n = {last['n']}: {last['symbolic_ops']} operations raw, {last['symbolic_ops_cse']} "
        f"after cse, {last['tape_nodes']} tape entries, {last['paths']} paths. From n = "
        f"{prev['n']} to {last['n']} the raw derivative grew by a factor "
        f"{number(last['symbolic_ops'] / prev['symbolic_ops'], 3)}, the one after cse by "
        f"{last['symbolic_ops_cse'] - prev['symbolic_ops_cse']} operations, the tape by "
        f"{last['tape_nodes'] - prev['tape_nodes']} entries.",
        "",
        markdown_table(
            ["n", "SymPy ops", "SymPy ops after cse", "tape entries", "paths", "2^(n-1)"],
            [[x["n"], x["symbolic_ops"], x["symbolic_ops_cse"], x["tape_nodes"], x["paths"],
              x["paths_formula"]] for x in rows],
            digits=12,
        ),
        "", "Beyond SymPy's reach, the tape keeps growing linearly while paths double:", "",
        markdown_table(["n", "tape entries", "paths"],
                       [[x["n"], x["tape_nodes"], x["paths"]] for x in r["tape_only"]],
                       digits=12),
        "", "## Baydin et al. (JMLR 2018), Table 1", "",
        f"The n = 4 derivative, expanded by SymPy: `{b['derivative']}`; published: "
        f"`{b['published']}`. Equal: **{number(b['matches'])}**. diffkit's reverse mode "
        f"against the published polynomial at x = 0.1, 0.3, 0.7: largest relative error "
        f"{number(b['diffkit_max_rel_error'], 2)}.",
    ]
    timing = [
        f"{r['timing']['seconds']:.1f} s for the whole study. Seconds per n:", "",
        markdown_table(
            ["n", "sympy.diff", "diffkit value_and_grad"],
            [[t["n"], f"{t['symbolic_seconds']:.4f}", f"{t['tape_seconds']:.6f}"]
             for t in r["timing"]["logistic_map"]],
        ),
    ]
    return body, timing


def plots(result: dict, out: Path) -> list:
    """Draw derivative size vs n (SymPy raw, after cse, tape entries, paths); return file names.

    Example:
        plots(run_study("swell", quick=True), Path("."))
        ['swell.png']
    """
    rows = result["logistic_map"]
    n = [r["n"] for r in rows]
    fig = figure(8, 5)
    ax = fig.add_subplot()
    ax.plot(n, positive([r["symbolic_ops"] for r in rows]), "o-", label="SymPy diff, count_ops")
    ax.plot(n, positive([r["symbolic_ops_cse"] for r in rows]), "s-",
            label="SymPy diff after cse, count_ops")
    ax.plot(n, [r["tape_nodes"] for r in rows], "^-", label="diffkit tape entries")
    ax.plot(n, [r["paths"] for r in rows], "x--", label="paths a path-walking backward pass takes")
    ax.set_yscale("log")
    ax.set_xlabel("n (logistic map l_n, l_(k+1) = 4 l_k (1 - l_k))")
    ax.set_ylabel("size")
    ax.set_title("Expression swell: derivative of the logistic map")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return [save(fig, out, "swell.png")]
