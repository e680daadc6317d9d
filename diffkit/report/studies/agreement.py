"""The agreement study's page: the article's numbers, the chain rule read off the tape, every
case x every method and the edge points; the index draws its one plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffkit.report.plots import figure, save
from diffkit.report.tables import markdown_table, number, plural

TITLE = "Agreement: every method on every case of the catalog"
KEY_PLOT = "agreement.png"  # drawn by index_plot: the page itself has no plot


def headline(result: dict) -> str:
    """Return the index line: cases x methods, the verdict, and how many edge points agree."""
    every = result["cases"]
    bad = [c["name"] for c in every if not c["agree"]]
    verdict = "all methods agree" if not bad else f"DISAGREEMENT on {', '.join(bad)}"
    points = sum(c["points"] for c in every)
    edges = result["edges"]
    wrong = sorted({d["case"] for d in edges["disagreements"]})
    return (f"{len(result['cases'])} cases x {len(result['methods'])} methods at "
            f"{points} points in all: {verdict}; edge points: {edges['agreed']} of "
            f"{edges['comparisons']} agree"
            + (f" (DISAGREEMENT on {', '.join(wrong)})" if wrong else ""))


def sections(r):
    """Return the page's Markdown lines: the body, and the timing section's."""
    cases = r["cases"]
    catalog = [c for c in cases if c["name"] not in r["deep_chains"]]
    deep = [c for c in cases if c["name"] in r["deep_chains"]]
    comparisons = sum(c["points"] for c in cases)
    bad = [c["name"] for c in cases if not c["agree"]]
    fallback = [c["name"] for c in cases if c["references"] != ["symbolic"]]
    paragraph = [
        f"{plural(len(catalog), 'case')} of the catalog x {len(r['methods'])} methods, each at "
        f"the case's default point and at {plural(r['random_points'], 'random point')}"
        + (f", and the deep chains {', '.join(c['name'] for c in deep)} at the article's point"
           + (f" and {plural(r['deep_random_points'], 'random point')}"
              if r["deep_random_points"] else "") if deep else "")
        + f": {comparisons} comparisons by `diffkit.compare`. Chains are at the article's "
        f"depth {r['chain_depth']}. Random points are drawn uniformly from the case's domain "
        "with numpy's default_rng seeded by the case's name, and kept only when every switch "
        "(the input of relu, leaky_relu, elu, abs) is at least "
        f"{r['kink_margin']} away from its kink and every intermediate value stays below 1e6, "
        "so that no finite difference straddles a kink. The edge points below go where these "
        "random points do not.",
        "",
        "**Verdict: " + ("every method agrees on every case at every point.**" if not bad else
                         f"the methods DISAGREE on {', '.join(bad)}.**"),
        "",
        "Each method is measured against diffkit's reference: the local derivative of every "
        "primitive application from SymPy, accumulated along the traced graph in mpmath at two "
        "precisions; the digits both precisions share are the digits proven (the table's "
        f"`digits`: the fewest over the points, {r['reference_digits']}+ when at least "
        f"{r['reference_digits']}). A method is blamed only when it is farther from the "
        "reference than its tolerance plus the reference's own error bound"
        + (f"; where there was no reference ({', '.join(fallback)}), the consensus of the "
           "other methods decided, as the notes say." if fallback else "."),
    ]
    expected_rows = [
        [e["name"], e["expected_value"], e["value"], _vector(e["expected_gradient"]),
         _vector(e["gradient"]), e["matches"]]
        for e in r["expected"]
    ]
    neuron = r["chain_rule"]["sigmoid_neuron"]
    xor = r["chain_rule"]["xor_graph"]
    body = paragraph + [
        "", "## The article's numbers", "",
        "diffkit's reverse mode at the article's points, against the values the article gives "
        "(logistic_map_4: Baydin et al.'s closed forms):", "",
        markdown_table(["case", "expected f", "diffkit f", "expected gradient",
                        "diffkit gradient", "match"], expected_rows, digits=12),
        "", "## The sigmoid neuron step by step (read off diffkit's tape)", "",
        "f(x, w, b) = 1/(1+exp(-(w*x+b))) at (1, 0, 0). Each tape entry with its value and the "
        "local derivatives its VJP rule gives:", "",
        steps_table(neuron["steps"]), "",
        "Same path multiply: the chain-rule product along each path from an input to f:", "",
        paths_table(neuron["paths"]), "",
        "Gradient, the sum over each input's paths: "
        + ", ".join(f"df/d{k} = {number(v)}" for k, v in neuron["gradient"].items())
        + f" (the article: {_vector(_expected(r, 'sigmoid_neuron'))[1:-1]}).",
        "", "## Different paths add: xor_graph", "",
        "h1 = x+y-0.5, h2 = -x-y+1.5, h3 = h1+h2-1.5 at (1, 0). On the tape each "
        "subtraction of a constant is its own entry, so the article's h1, h2, h3 are the "
        f"tape's {xor['steps'][1]['name']}, {xor['steps'][4]['name']}, "
        f"{xor['steps'][-1]['name']}:", "",
        steps_table(xor["steps"]), "",
        "x reaches the output along two paths; their products add:", "",
        paths_table(xor["paths"]), "",
        "Gradient: " + ", ".join(f"dh3/d{k} = {number(v)}" for k, v in xor["gradient"].items())
        + ".",
        "", "## Every case, every method", "",
        "Largest relative error over the points, per method (symbolic: the reference itself; "
        "n/a: the method did not apply at any point, its note says why):", "",
        agreement_table(r),
    ]
    body += _large_relative_errors(cases)
    notes = []
    for c in cases:
        for m, entry in c["methods"].items():
            for note in entry["notes"]:
                notes.append(f"- {c['name']}, {m}: {note}")
    if notes:
        body += ["", "Notes:", "", *notes]
    body += ["", *_edges(r["edges"], r["reference_digits"], r["parameters"]["quick"])]
    timing = [
        f"{r['timing']['seconds']:.1f} s in {r['timing']['workers']} worker(s); summed over "
        "comparisons, by method:", "",
        markdown_table(["method", "seconds"],
                       [[m, _seconds(s)] for m, s in r["timing"]["method_seconds"].items()]),
    ]
    slowest = r["timing"].get("slowest")
    if slowest:
        timing += ["", f"Slowest comparison: {slowest['case']}, "
                   f"{_seconds(slowest['seconds'])} (all methods)."]
    return body, timing


# A relative error this large on a method that agrees needs a word: which entry, how small.
_LARGE_RELATIVE = 1e-3


def _large_relative_errors(cases):
    """A paragraph on agreeing methods whose relative error is large: the smallest reference
    entry and the largest absolute error show why (the entry vanishes)."""
    found = []
    for c in cases:
        methods = [m for m, x in c["methods"].items() if x["applicable"] and x["agree"]
                   and (x["max_rel_error"] or 0) >= _LARGE_RELATIVE]
        entries = [abs(g) for e in c["evaluations"] for g in e["reference_gradient"]
                   if g is not None and g != 0]
        if methods and entries:
            worst = max(c["methods"][m]["max_abs_error"] or 0 for m in methods)
            found.append(f"{c['name']} ({', '.join(methods)}: smallest reference entry "
                         f"{number(min(entries), 2)}, largest absolute error {number(worst, 2)})")
    if not found:
        return []
    return ["", f"A relative error of {number(_LARGE_RELATIVE)} or more where the method agrees "
            "is measured on an entry that all but vanishes (a vanishing gradient); the "
            "absolute error shows how little is at stake: " + "; ".join(found) + "."]


def _edges(e, digits, quick):
    """The edge-point section: the rules, the plain count, what disagreed and why, and one row
    per comparison."""
    count, agreed = e["comparisons"], e["agreed"]
    lines = [
        "## Edge points", "",
        "Points chosen by rule, not by outcome, for every case of the catalog and for the "
        "single-unit chains chain_<activation>_1: exact kinks, tails, the power's base at 0 "
        "and the logistic map's interval ends"
        + (" (quick mode: only the first rule below, on the catalog's cases)" if quick else "")
        + ". No case applies log, sqrt or a fractional "
        "power, and the one division (sigmoid_neuron's 1/(1+exp(-z))) never reaches 0, so "
        "the logistic map's interval [0, 1] is the only domain with an edge. The rules:", "",
        *[f"- `{rule}`: {text}" for rule, text in e["rules"].items()],
        "",
    ]
    if count == 0:
        return lines + ["No edge point was compared (none of the selected cases has one)."]
    verdict = (f"all {count} agree" if agreed == count else
               f"{count - agreed} DISAGREE")
    lines += [f"**{agreed} of {count} edge comparisons agree ({verdict}).**", ""]
    if e["disagreements"]:
        lines += ["The comparisons that disagree, and why:", ""]
        lines += [f"- {d['case']} at `{d['rule']}` {_point(d['point'])}: {d['reason']}"
                  for d in e["disagreements"]]
        lines.append("")
    if e["not_finite"]:
        lines += ["f itself is not finite (inf or nan in float64) at these edge points; their "
                  "verdicts are in the table like any other:", ""]
        lines += [f"- {d['case']} at `{d['rule']}` {_point(d['point'])}"
                  for d in e["not_finite"]]
    else:
        lines.append("f is finite at every edge point.")
    status = ", ".join(f"{n} {s}" for s, n in e["status"].items())
    na = [f"{m} at {plural(n, 'point')}" for m, n in e["not_applicable"].items() if n]
    blamed = [f"{m} at {plural(n, 'point')}" for m, n in e["blamed"].items() if n]
    lines += [
        "",
        f"- Gradient entries over all edge comparisons: {status}. "
        f"{plural(e['kinks'], 'comparison')} had a switch exactly at its switching point "
        "(the reference then takes the one-sided derivatives; where they differ the entry is a "
        "kink and any value between them is right).",
        f"- Reference: symbolic at {e['references']['symbolic']}, the consensus of the methods "
        f"at {e['references']['consensus']}.",
        "- Methods that did not apply: " + ("; ".join(na) if na else "none") + ".",
        "- Methods blamed (proven wrong on some entry): "
        + ("; ".join(blamed) if blamed else "none") + ".",
        "",
        "One row per edge comparison (entries: how each gradient entry was judged; n/a: the "
        "method did not apply, with its note):", "",
        markdown_table(
            ["case", "rule", "f", "verdict", "reference", "entries", "n/a", "blamed"],
            [_edge_row(p, digits) for p in e["points"]],
        ),
    ]
    return lines


def _edge_row(p, digits):
    methods = p["methods"]
    na = "; ".join(f"{m}: {x['note'] or 'no reason given'}" for m, x in methods.items()
                   if not x["applicable"])
    blamed = "; ".join(f"{m} in d/d({', '.join(x['wrong'])})" for m, x in methods.items()
                       if x["wrong"])
    source = p["reference"]
    if p["digits"] is not None:
        source += f", {digits}+ digits" if p["digits"] >= digits else f", {p['digits']:.0f} digits"
    return [p["case"], p["rule"], "not finite" if not p["finite"] else number(p["value"]),
            "agree" if p["agree"] else "DISAGREE", source,
            ", ".join(f"{n} {s}" for s, n in p["status"].items() if n), na or "-",
            blamed or "none"]


def _point(values) -> str:
    return "(" + ", ".join(number(v) for v in values) + ")"


def _vector(values) -> str:
    return "(" + ", ".join(number(v, 12) for v in values) + ")"


def _expected(r, name):
    return next(e["expected_gradient"] for e in r["expected"] if e["name"] == name)


def _seconds(value) -> str:
    return f"{value:.2f} s"


def agreement_table(result) -> str:
    """One row per case: its points, the reference's digits proven (fewest over the points),
    per method the max relative error over the points, and the verdict.

    Example:
        >>> row = {"name": "c", "points": 2, "digits": 30.0, "methods": {"reverse":
        ...        {"max_rel_error": 0.0, "agree": True}}, "agree": True}
        >>> "| c " in agreement_table({"methods": ["reverse"], "cases": [row]})
        True
    """
    methods = result["methods"]
    target = result.get("reference_digits", 30)
    rows = []
    for case in result["cases"]:
        digits = case.get("digits")
        shown = "n/a" if digits is None else (f"{target}+" if digits >= target else
                                              f"{digits:.0f}")
        cells = [case["name"], case["points"], shown]
        for method in methods:
            entry = case["methods"].get(method)
            cells.append(_error_cell(entry, case["points"]))
        cells.append("agree" if case["agree"] else "DISAGREE")
        rows.append(cells)
    return markdown_table(["case", "points", "digits", *methods, "verdict"], rows, digits=2)


def _error_cell(entry, points) -> str:
    if entry is None or entry.get("applicable") is False:
        return "n/a"
    served = entry.get("reference_points")
    if served is not None:  # the symbolic method is the reference, not measured against it
        return "reference" if served == points else f"reference at {served} of {points}"
    text = number(entry.get("max_rel_error"), 2)
    return text if entry.get("agree", True) else f"**{text}** ✗"


def steps_table(steps) -> str:
    """The article's step-by-step forward pass: node, operation, value, local derivatives.

    Example:
        >>> print(steps_table([{"name": "h1", "operation": "w * x", "value": 0.0,
        ...                     "local": [["w", 1.0]]}]))
        | node   | operation   | value   | local derivatives   |
        |--------|-------------|---------|---------------------|
        | h1     | w * x       | 0       | dh1/dw = 1          |
    """
    rows = []
    for step in steps:
        local = ", ".join(f"d{step['name']}/d{name} = {number(d)}" for name, d in step["local"])
        rows.append([step["name"], step["operation"], step["value"], local])
    return markdown_table(["node", "operation", "value", "local derivatives"], rows)


def paths_table(paths) -> str:
    """Each path input -> output with its factors and their product ("same path multiply").

    Example:
        >>> print(paths_table({"x": [{"nodes": ["x", "h1"], "factors": [2.0], "product": 2.0}]}))
        | input   | path   | factors   | product   |
        |---------|--------|-----------|-----------|
        | x       | x → h1 | 2         | 2         |
    """
    rows = []
    for name, found in paths.items():
        for path in found:
            factors = " × ".join(number(f) for f in path["factors"])
            rows.append([name, " → ".join(path["nodes"]), factors, path["product"]])
    return markdown_table(["input", "path", "factors", "product"], rows)


def index_plot(result: dict, out: Path) -> str:
    """Draw each case's largest relative error per method (the reference excluded) as one dot
    chart, agreeing methods filled and disagreeing ones crossed; return the file name.

    Example:
        index_plot(json.loads(Path("reports/agreement.json").read_text()), Path("."))
        'agreement.png'
    """
    cases = result["cases"]
    methods = [m for m in result["methods"] if m != "symbolic"]
    fig = figure(8, 0.28 * len(cases) + 1.4)
    ax = fig.add_subplot()
    floor = 1e-17
    rows = np.arange(len(cases))
    for k, method in enumerate(methods):
        color = f"C{k}"
        for row, case in zip(rows, cases):
            entry = case["methods"].get(method)
            if not entry or entry.get("applicable") is False:
                continue
            value = max(entry.get("max_rel_error") or 0.0, floor)
            agree = entry.get("agree", True)
            ax.plot([value], [row + (k - len(methods) / 2) * 0.12], "o" if agree else "x",
                    color=color, ms=4 if agree else 8)
        ax.plot([], [], "o", color=color, label=method)
    ax.set_xscale("log")
    ax.set_yticks(rows, [c["name"] for c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("largest relative error over the points (0 drawn at 1e-17)")
    ax.set_title("Every method against the reference, every case (x: disagrees)", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, out, "agreement.png")
