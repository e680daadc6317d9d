"""One Markdown page per study: what was run, a paragraph generated from the numbers, the
tables, the plots, and a timing section marked as the only part that varies between runs."""

from __future__ import annotations

import math

from diffkit.experiments.xor import QUICK_EPOCHS, QUICK_SEEDS
from diffkit.report.tables import (
    agreement_table,
    markdown_table,
    number,
    paths_table,
    steps_table,
)

TIMING_MARK = "<!-- timing: varies from run to run; everything above is deterministic -->"
TITLES = {
    "agreement": "Agreement: every method on every case of the catalog",
    "vanishing": "Vanishing gradients along single-unit chains",
    "xor": "XOR: the 2-2-1 sigmoid network, trained two ways",
    "swell": "Expression swell: the logistic map",
    "accuracy": "Accuracy: how numerical derivatives fail, step by step",
}


def render(name: str, result: dict, plots) -> str:
    """Return the Markdown page of study `name`; `plots` lists PNG names, None if skipped.

    Example:
        >>> from diffkit.experiments import run_study
        >>> render("xor", run_study("xor", seeds=1, epochs=3, workers=1), None).splitlines()[0]
        '# XOR: the 2-2-1 sigmoid network, trained two ways'
    """
    body = {"agreement": _agreement, "vanishing": _vanishing, "xor": _xor, "swell": _swell,
            "accuracy": _accuracy}[name]
    sections, timing = body(result)
    lines = [f"# {TITLES[name]}", "", *sections]
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
    if name == "agreement":
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
    if name == "vanishing":
        relu = result["activations"]["relu"]
        sigmoid = result["activations"]["sigmoid"]
        at = min(10, len(relu["depths"])) - 1
        return (f"depth {at + 1}: sigmoid median product {number(sigmoid['product_median'][at])}"
                f" (bound {number(sigmoid['bound'][at])}); ReLU dead in "
                f"{relu['zero_fraction'][at]:.1%} of {result['inits']} inits; leaky ReLU never 0")
    if name == "xor":
        batched = result.get("batched_seeds", result["seeds"])
        styles = (" x 2 styles" if batched == result["seeds"] else
                  f" (the batched graph on {_first_seeds(batched)})")
        return (f"{result['seeds']} seeds{styles}, {result['epochs']} epochs: success rate "
                f"{result['success_rate']:.0%}; styles agree to "
                f"{number(result['trajectory_max_diff'], 2)}")
    if name == "accuracy":
        return _accuracy_headline(result)
    last = result["logistic_map"][-1]
    return (f"n = {last['n']}: SymPy derivative {last['symbolic_ops']} ops "
            f"({last['symbolic_ops_cse']} after cse), tape {last['tape_nodes']} entries, "
            f"{last['paths']} paths; Baydin n = 4 check: {number(result['baydin']['matches'])}")


def _seconds(value) -> str:
    return f"{value:.2f} s"


# ---- agreement ----

def _agreement(r):
    cases = r["cases"]
    catalog = [c for c in cases if c["name"] not in r["deep_chains"]]
    deep = [c for c in cases if c["name"] in r["deep_chains"]]
    comparisons = sum(c["points"] for c in cases)
    bad = [c["name"] for c in cases if not c["agree"]]
    fallback = [c["name"] for c in cases if c["references"] != ["symbolic"]]
    paragraph = [
        f"{_count(len(catalog), 'case')} of the catalog x {len(r['methods'])} methods, each at "
        f"the case's default point and at {_count(r['random_points'], 'random point')}"
        + (f", and the deep chains {', '.join(c['name'] for c in deep)} at the article's point"
           + (f" and {_count(r['deep_random_points'], 'random point')}"
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
    sections = paragraph + [
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
    sections += _large_relative_errors(cases)
    notes = []
    for c in cases:
        for m, entry in c["methods"].items():
            for note in entry["notes"]:
                notes.append(f"- {c['name']}, {m}: {note}")
    if notes:
        sections += ["", "Notes:", "", *notes]
    sections += ["", *_edges(r["edges"], r["reference_digits"], r["parameters"]["quick"])]
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
    return sections, timing


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
    na = [f"{m} at {_count(n, 'point')}" for m, n in e["not_applicable"].items() if n]
    blamed = [f"{m} at {_count(n, 'point')}" for m, n in e["blamed"].items() if n]
    lines += [
        "",
        f"- Gradient entries over all edge comparisons: {status}. "
        f"{_count(e['kinks'], 'comparison')} had a switch exactly at its switching point "
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


def _count(n, noun) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


# ---- vanishing ----

_SHOWN_DEPTHS = (1, 5, 10, 20, 30, 50)


def _vanishing(r):
    acts = r["activations"]
    depths = acts["sigmoid"]["depths"]
    last = depths[-1]
    shown = [d for d in _SHOWN_DEPTHS if d <= last]
    sigmoid, relu, leaky = acts["sigmoid"], acts["relu"], acts["leaky_relu"]
    ratios = [m / b for m, b in zip(sigmoid["product_abs_max"], sigmoid["bound"])]
    ratio = max(ratios)
    at = ratios.index(ratio) + 1
    leaky_zero = max(leaky["zero_fraction"])
    ten = min(10, last) - 1
    relu_row = ", ".join(f"{relu['zero_fraction'][d - 1]:.1%} of inits at depth {d}"
                         for d in shown[:4])
    relu_alive = "; ".join(
        f"{1 - relu['zero_fraction'][d - 1]:.2%} alive at depth {d} (2^-{d} = {0.5 ** d:.2%})"
        for d in shown[:3]
    )
    sections = [
        f"Chains y_0 = x = {number(r['x'])}, y_i = f(w_i y_(i-1)) with w_i ~ N(0, 1) "
        f"({r['inits']} initialisations, numpy default_rng({r['seed']}), the same weights for "
        f"every activation), depths 1..{last}. For each chain, the product of the activation "
        "derivatives prod f'(h_i) (the factor of every dC/dw that vanishes or not), computed "
        "with diffkit's VJP rules; the bound is (sup f')^depth with sup f' found by SymPy.",
        "",
        "- **sigmoid**: " + (
            "every product is below 0.25^depth, as the article says" if ratio < 1 else
            "SOME PRODUCTS REACH 0.25^depth, against the article") +
        f": the largest product/bound ratio over all inits and depths is 1 - "
        f"{number(1 - ratio, 2)}, at depth {at} (where h = w can be near 0, and "
        f"sigmoid'(0) = 1/4); at depth {ten + 1} it is {number(ratios[ten], 3)}, and the "
        f"median product is {number(sigmoid['product_median'][ten])} against a bound of "
        f"{number(sigmoid['bound'][ten])}.",
        f"- **ReLU**: the product is exactly 0 (a dead unit) in {relu_row}. With x = 1 and "
        "w ~ N(0, 1) each layer passes a positive input on with probability 1/2, so a chain "
        f"stays alive with probability 2^-depth: measured {relu_alive}.",
        "- **leaky ReLU**: " + (
            "never exactly 0" if leaky_zero == 0 else
            f"EXACTLY 0 in up to {leaky_zero:.2%} of inits") +
        f", but its median product at depth {ten + 1} is "
        f"{number(leaky['product_median'][ten])}: 0.01 per negative pre-activation.",
        "",
        "## Product of derivatives by depth", "",
        "Median of prod f'(h_i) over inits (5% and 95% quantiles at depth "
        f"{ten + 1}), the fraction of inits where it is exactly 0, and the largest "
        f"|product|/bound at depth {ten + 1}:", "",
        markdown_table(
            ["activation", "sup f'", *[f"median, depth {d}" for d in shown],
             f"5%..95%, depth {ten + 1}", f"zero, depth {ten + 1}",
             f"max |product|/bound, depth {ten + 1}"],
            [[name, a["sup_derivative"], *[a["product_median"][d - 1] for d in shown],
              f"{number(a['product_p05'][ten], 3)}..{number(a['product_p95'][ten], 3)}",
              a["zero_fraction"][ten],
              a["product_abs_max"][ten] / a["bound"][ten]]
             for name, a in acts.items()],
            digits=3,
        ),
        "", "## Per-layer gradients at the article's depth 10", "",
        "Median over inits of |dC/dw_i| for C = (3 - y_10)^2 (layer 1 is nearest the input); "
        "one reverse pass over all inits at once:", "",
        markdown_table(["activation", *[f"w{i}" for i in range(1, 11)]], _layer_rows(acts),
                       digits=3),
        "", "## Cross-checks", "",
        "dC/dw1 from diffkit's reverse mode and from the closed form "
        "2 (y - 3) w_n...w_2 prod f'(h_i) x, against sympy.diff of the chain traced into "
        "SymPy (30 digits), at small depth; and reverse mode against the closed form at "
        "depth 10 over every init:", "",
        markdown_table(
            ["activation", *[f"reverse / closed form vs SymPy, depth {c['depth']}"
                             for c in acts["sigmoid"]["sympy_check"]],
             "reverse vs closed form, depth 10"],
            [[name, *[f"{number(c['reverse_rel_error'], 2)} / "
                      f"{number(c['closed_form_rel_error'], 2)}" for c in a["sympy_check"]],
              a["closed_form_rel_error_depth10"]] for name, a in acts.items()],
            digits=2,
        ),
    ]
    cure = r["cure"]
    sections += [
        "", "## The article's cure: leaky ReLU, and width", "",
        f"{cure['inits']} fresh N(0, 1) initialisations per model, x = 1: the share of inits "
        "where every weight's gradient is exactly 0, the share of zero gradient entries, and "
        "the share where the first layer's gradient is 0:", "",
        markdown_table(
            ["model", "weights", "all gradients 0", "zero entries", "first layer 0"],
            [[m["name"], m["weights"], m["all_zero_fraction"], m["zero_entry_fraction"],
              m["first_layer_zero_fraction"]] for m in cure["models"]],
        ),
    ]
    timing = [f"{r['timing']['seconds']:.1f} s for the whole study."]
    return sections, timing


def _layer_rows(acts):
    rows = []
    for name, a in acts.items():
        rows.append([name, *a["layer_grads_depth10"]])
        if 0 in a["layer_grads_depth10"]:
            live = max(a["layer_grads_depth10_nonzero_count"])
            medians = a["layer_grads_depth10_nonzero_median"]
            rows.append([f"{name}, the {_count(live, 'live init')}", *medians])
    return rows


# ---- xor ----

def _xor(r):
    runs = r["runs"]
    scalar = [x for x in runs if x["style"] == "scalar"]
    solved = [x for x in scalar if x["solved"]]
    keys = ("00", "01", "10", "11")
    mean = {k: sum(x["outputs"][k] for x in solved) / len(solved) for k in keys} if solved else {}
    batched = r.get("batched_seeds", r["seeds"])
    sections = [
        f"The 2-2-1 sigmoid network of the article (9 parameters) trained on the four XOR "
        f"samples by full-batch gradient descent, lr {r['lr']}, {r['epochs']} epochs, from "
        f"{r['seeds']} seeded initialisations ({r['init']}). Loss: {r['loss']}. "
        + ("Each seed is trained twice from the same initial weights: as per-sample scalar "
           "graphs (the article's way: one diffkit graph per sample, gradients summed) and as "
           "one batched array graph over the four samples." if batched == r["seeds"] else
           "Each seed is trained as per-sample scalar graphs (the article's way: one diffkit "
           f"graph per sample, gradients summed); {_first_seeds(batched)} also as one batched "
           "array graph over the four samples, from the same initial weights."),
        *_xor_quick(r, batched),
        "",
        f"- **Success rate: {r['success_rate']:.0%}** ({len(solved)} of {len(scalar)} seeds); "
        f"a run is solved when every output is within {r['solved_tolerance']} of its target. "
        "The others stop in a local minimum of the loss: see their outputs below.",
        "- Solved runs end near 0, 1, 1, 0: mean outputs "
        + (", ".join(f"f({k[0]},{k[1]}) = {number(mean[k], 3)}" for k in keys) if solved
           else "n/a (no run solved)") + ".",
        "- Both styles follow the same trajectory"
        + ("" if batched == r["seeds"] else f" ({_first_seeds(batched)})")
        + ": the largest difference of any parameter at "
        f"any recorded epoch (every {r['curve_every']}) is {number(r['trajectory_max_diff'], 2)}"
        " (required: below 1e-9).",
        "",
        "## Every run", "",
        markdown_table(
            ["seed", "style", "solved", "final loss", "f(0,0)", "f(0,1)", "f(1,0)", "f(1,1)",
             "max |scalar - batched|"],
            [[x["seed"], x["style"], x["solved"], x["final_loss"],
              *[x["outputs"][k] for k in keys], x["trajectory_max_diff"]] for x in runs],
            digits=3,
        ),
    ]
    t = r["timing"]
    timing = [
        f"{t['seconds']:.1f} s in {t['workers']} worker(s). Per epoch (four samples): scalar "
        f"graphs {t['scalar_us_per_epoch']:.0f} µs, batched graph "
        f"{t['batched_us_per_epoch']:.0f} µs.",
    ]
    return sections, timing


def _first_seeds(count) -> str:
    return "seed 0" if count == 1 else f"seeds 0..{count - 1}"


def _xor_quick(r, batched):
    """What quick mode changed, and why the result still stands."""
    full = r.get("full")
    if not r["parameters"]["quick"] or not full:
        return []
    changes = []
    if r["seeds"] != full["seeds"]:
        changes.append(f"{r['seeds']} seeds ({_first_seeds(r['seeds'])}) instead of "
                       f"{full['seeds']}")
    if r["epochs"] != full["epochs"]:
        changes.append(f"{r['epochs']} epochs instead of {full['epochs']}")
    if batched != r["seeds"]:
        changes.append(f"the batched graph for {_first_seeds(batched)} only, where the two "
                       "styles are compared")
    if not changes:
        return ["", "**Quick mode** (`diffkit report --quick`) changed nothing here."]
    return [
        "",
        f"**Quick mode** (`diffkit report --quick`) changed {_count(len(changes), 'thing')}: "
        + "; ".join(changes) + ". The seeds are the first ones, never chosen by their "
        "outcome. Fewer epochs cost time, not outcomes: a run that solves XOR does so within a "
        "few thousand epochs and a stuck one sits on its plateau long before (the loss curves "
        "below)"
        + (", and for these seeds the outcome after the quick epochs is the outcome after "
           "the full run's (tests/test_report_quick.py checks it with a hand-written NumPy "
           "descent)" if r["seeds"] <= QUICK_SEEDS and r["epochs"] >= QUICK_EPOCHS else "")
        + f". {r['seeds']} seeds give a rough success rate; `diffkit report` runs the "
        "full study.",
    ]


# ---- swell ----

def _swell(r):
    rows = r["logistic_map"]
    last, prev = rows[-1], rows[-2]
    b = r["baydin"]
    sections = [
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
    return sections, timing


# ---- accuracy ----

_METHOD_NAMES = {"forward": "forward", "central": "central", "richardson": "Richardson",
                 "complex_step": "complex step"}
_TRUNCATION = {"forward": "h f''/2", "central": "h² f'''/6", "richardson": "h⁴ f⁽⁵⁾/480",
               "complex_step": "h² f'''/6"}
_OPTIMAL = {"forward": "sqrt(2 eps\\|f\\| / \\|f''\\|)",
            "central": "(3 eps\\|f\\| / \\|f'''\\|)^(1/3)",
            "richardson": "(120 eps\\|f\\| / \\|f⁽⁵⁾\\|)^(1/5)",
            "complex_step": "any h below sqrt(6 eps\\|f'\\| / \\|f'''\\|)"}


def _rel(entry, error):
    return error / abs(entry["gradient"])


def _digits(rel) -> str:
    """Correct significant digits, -log10 of a relative error ('all' for an error of 0)."""
    if rel is None:
        return "n/a"
    if rel == 0:
        return "all"
    return f"{max(0.0, -math.log10(rel)):.1f}"


def _summary_row(r, method, dtype):
    return next(x for x in r["summary"] if x["method"] == method and x["dtype"] == dtype)


def _accuracy_headline(r) -> str:
    """One line: best relative errors in float64 and float32, the gradient-check tolerance a
    float32 central difference needs, and AD's float32 digits."""
    def best(dtype, method):
        return number(_summary_row(r, method, dtype)["best_rel_error_median"], 2)

    ad = next(x for x in r["ad_summary"] if x["mode"] == "reverse" and x["dtype"] == "float32")
    central32 = _summary_row(r, "central", "float32")
    return (f"best relative error of f' (median of {len(r['cases'])} cases), float64: forward "
            f"{best('float64', 'forward')}, central {best('float64', 'central')}, Richardson "
            f"{best('float64', 'richardson')}, complex step {best('float64', 'complex_step')}; "
            f"float32: central {best('float32', 'central')}; a float32 central-difference "
            f"check needs rtol {number(central32['needed_rtol'], 2)} "
            f"({central32['worst_case']}); reverse mode in float32 keeps "
            f"{_digits(ad['max_rel_error'])}+ digits")


def _accuracy(r):
    cases = r["cases"]
    eps64, eps32 = r["dtypes"]["float64"]["eps"], r["dtypes"]["float32"]["eps"]
    digits = min(c["dtypes"][d]["reference_digits"] for c in cases for d in r["dtypes"])
    sections = [
        f"{_count(len(cases), 'case')}, each the derivative of a catalog function along one "
        "variable: " + "; ".join(f"**{c['name']}**: {c['label']}" for c in cases) + ".",
        "",
        "Four numerical derivatives of each, against the 30-digit reference "
        "(`diffkit.reference`: SymPy's local derivatives accumulated in mpmath, at least "
        f"{digits:.0f} digits proven by two precisions), as the step h runs from "
        f"{number(r['largest_step'])} down to {number(r['smallest_step'])}, "
        f"{r['parameters']['steps_per_decade']} steps a decade (the complex step on down to "
        f"{number(r['smallest_complex_step'])}, in float32 to its smallest normal number "
        f"{number(r['dtypes']['float32']['tiny'], 2)}):",
        "",
        *[f"- **{_METHOD_NAMES[m]}**: {x['formula']}" for m, x in r["methods"].items()],
        "",
        "Every step is made exact: the step taken, (x+h) - x, is the one used and plotted, "
        "and a step that leaves x unchanged is skipped. float32 means the point, every "
        "operation and the quotient in float32 (complex64 for the complex step), measured "
        "against the reference at the point rounded to float32 (eps = "
        f"{number(eps32, 3)}; float64: {number(eps64, 3)}).",
        *(["", "**Quick mode** (`diffkit report --quick`) changed nothing here: the whole "
           "study takes a second or two."] if r["parameters"]["quick"] else []),
        "",
        "## The error model",
        "",
        "A difference quotient errs by its truncation (the first Taylor term it drops) plus "
        "the rounding of f's values divided by the step; the complex step subtracts nothing, "
        "so it has no rounding term beyond eps |f'|. The optimal step balances the two; the "
        "rule of thumb is that step for |f| ~ |f^(k)| and x of size 1, scaled by max(1, |x|) "
        "as diffkit does:",
        "",
        markdown_table(
            ["method", "truncation", "slope", "rounding", "optimal step", "rule of thumb"],
            [[_METHOD_NAMES[m], _TRUNCATION[m], {"forward": "1", "central": "2",
                                                   "richardson": "4", "complex_step": "2"}[m],
              "eps \\|f'\\|" if m == "complex_step" else "eps \\|f\\| / h", _OPTIMAL[m],
              _rule_text(x)]
             for m, x in r["methods"].items()],
        ),
        "",
        "The constants (f'' ... f⁽⁷⁾) come from f traced into SymPy and expanded by mpmath at "
        "50 digits; where the leading term vanishes the model takes the next one. The plots "
        "draw these terms as guides.",
        "",
        "## What the curves show",
        "",
        *_slope_lines(r),
        *_best_lines(r),
        *_special_lines(r),
        "",
        "## Best step against the rule of thumb",
        "",
        "Relative error of f' per method and dtype: the best over the steps (median and worst "
        "over the cases, and the range of steps that achieve it), and at the rule-of-thumb "
        "step (float64: diffkit's own steps). A best error counts only where it holds at the "
        "neighbouring steps too (a quarter decade either way): in the rounding regime one "
        "step can be lucky, which no one can rely on.",
        "",
        markdown_table(
            ["method", "dtype", "rule-of-thumb step (x = 1)", "best: median", "best: worst",
             "best steps", "at the rule step: median", "at the rule step: worst (case)"],
            [[_METHOD_NAMES[x["method"]], x["dtype"], _rule_step_text(x),
              x["best_rel_error_median"], x["best_rel_error_max"],
              f"{number(x['best_steps'][0], 2)} .. {number(x['best_steps'][1], 2)}",
              x["rule_rel_error_median"], f"{number(x['needed_rtol'], 3)} ({x['worst_case']})"]
             for x in r["summary"]],
            digits=3,
        ),
    ]
    for dtype in r["dtypes"]:
        sections += [
            "", f"Every case in {dtype} (model step: the optimal step of the error model; for "
            "the complex step the largest step whose truncation stays below eps |f'|):", "",
            markdown_table(
                ["case", "method", "best error", "at step", "model step", "model error",
                 "rule step", "error at rule step", "rule / best"],
                [_case_row(c, m, dtype) for c in cases for m in r["methods"]],
                digits=3,
            ),
        ]
    sections += _tolerance_section(r)
    sections += _ad_section(r)
    sections += _diffkit_section(r)
    timing = [f"{r['timing']['seconds']:.1f} s for the whole study."]
    return sections, timing


def _rule_text(method_entry) -> str:
    power = method_entry["rule_power"]
    if power is None:
        return "1e-20 (diffkit's)"
    return f"eps^(1/{round(1 / power)}) max(1, \\|x\\|)"


def _rule_step_text(row) -> str:
    if row["method"] == "complex_step":
        return number(row["rule_step"])
    rule = row["rule"].replace("|", "\\|")  # a bar inside a table cell ends the cell
    return f"{rule}: {number(row['rule_step'], 3)}"


def _case_row(case, method, dtype):
    entry = case["dtypes"][dtype]
    best, rule, model = entry["best"][method], entry["rule"][method], entry["model"][method]
    best_rel, rule_rel = _rel(entry, best["abs_error"]), _rel(entry, rule["abs_error"])
    ratio = "-" if best_rel == 0 else number(rule_rel / best_rel, 2)
    model_error = model["optimal_error"]
    return [case["name"], _METHOD_NAMES[method], best_rel, number(best["step"], 2),
            number(model["optimal_step"], 2),
            "n/a" if model_error is None else number(model_error / abs(entry["gradient"]), 2),
            number(rule["step"], 2), rule_rel, ratio]


def _fit_text(fit) -> str:
    if not fit["fits"]:
        return "no regime wide enough"
    model = " or ".join(str(p) for p in fit["model"])
    return (f"{number(fit['median'], 3)} (model {model}; {_count(fit['fits'], 'fit')}, "
            f"farthest {number(fit['max_distance'], 2)} from the model)")


def _slope_lines(r):
    lines = [
        f"Slopes of log(error) against log(h), fitted where a regime spans at least a decade "
        f"of steps: truncation where the leading term is at least {number(r['regime_factor'])} "
        "times the rounding term and 10 times the rest of the series, rounding where the "
        f"rounding term is {number(r['regime_factor'])} times the truncation and the relative "
        f"error below {number(r['saturated'])} (above that no digit is left to round). Median "
        "over the cases:",
        "",
    ]
    for dtype, methods in r["slopes"].items():
        parts = [f"{_METHOD_NAMES[m]} {_fit_text(x['truncation'])}" for m, x in methods.items()]
        lines.append(f"- {dtype}, truncation: " + "; ".join(parts) + ".")
        parts = [f"{_METHOD_NAMES[m]} {_fit_text(x['rounding'])}" for m, x in methods.items()
                 if m != "complex_step"]
        lines.append(f"- {dtype}, rounding: " + "; ".join(parts) + ".")
    return lines + [""]


def _best_lines(r):
    lines = []
    for dtype in r["dtypes"]:
        parts = []
        for method in r["methods"]:
            row = _summary_row(r, method, dtype)
            parts.append(f"{_METHOD_NAMES[method]} {number(row['best_rel_error_median'], 2)}")
        lines.append(f"- Best relative error in {dtype} (median over the cases): "
                     + ", ".join(parts) + ".")
    flat = r["complex_flat"]
    for dtype, rows in flat.items():
        worst = max(rows, key=lambda x: x["max_rel_error"] or 0.0)
        lines.append(
            f"- The complex step in {dtype}: below the model's step (its truncation under "
            f"eps |f'|) the relative error stays at most {number(worst['max_rel_error'], 2)} "
            f"down to h = {number(min(x['smallest_step'] for x in rows), 2)} ("
            f"largest at {worst['case']}, h = {number(worst['at_step'], 2)}"
            + (": there h f' is below float32's smallest normal number, its imaginary part "
               "loses bits" if dtype == "float32" and worst["at_step"] is not None
               and worst["at_step"] * abs(_entry(r, worst["case"], dtype)["gradient"])
               < r["dtypes"][dtype]["tiny"] else "") + ").")
    return lines


def _entry(r, name, dtype):
    return next(c for c in r["cases"] if c["name"] == name)["dtypes"][dtype]


def _special_lines(r):
    """Sentences on the cases the textbook model singles out: a vanishing leading term, a
    derivative small against f, a rule-of-thumb step far from the optimal one."""
    lines = []
    for c in r["cases"]:
        entry = c["dtypes"]["float64"]
        if entry["model"]["forward"]["power"] != 1:
            slope = entry["slopes"]["forward"]["truncation"]
            lines.append(
                f"- {c['name']}: f'' = 0 here, so the forward difference's leading error is "
                f"h² f'''/6: it is second order at this point (fitted slope "
                f"{number(slope, 3)}).")
    for c in r["cases"]:
        f32, f64 = c["dtypes"]["float32"], c["dtypes"]["float64"]
        ratio = abs(f64["value"]) / abs(f64["gradient"])
        if ratio < 1e3:
            continue
        best32 = min(_rel(f32, f32["best"][m]["abs_error"]) for m in ("forward", "central",
                                                                        "richardson"))
        best64 = min(_rel(f64, f64["best"][m]["abs_error"]) for m in ("forward", "central",
                                                                        "richardson"))
        complex32 = _rel(f32, f32["best"]["complex_step"]["abs_error"])
        lines.append(
            f"- {c['name']}: |f| / |f'| = {number(ratio, 2)} (a vanishing gradient), and the "
            "rounding term eps |f| / h is measured against |f'|: the best finite difference "
            f"keeps {_digits(best64)} digits in float64 and "
            + ("none in float32: no step gives a single right digit" if best32 >= 0.5 else
               f"{_digits(best32)} in float32")
            + f"; the complex step keeps {_digits(complex32)} in float32.")
    worst = None
    for c in r["cases"]:
        entry = c["dtypes"]["float64"]
        for m in ("forward", "central", "richardson"):
            model = entry["model"][m]
            if model["optimal_step"] is None:
                continue
            off = entry["rule"][m]["step"] / model["optimal_step"]
            if worst is None or abs(math.log10(off)) > abs(math.log10(worst[0])):
                worst = (off, c, m)
    if worst is not None:
        off, c, m = worst
        entry = c["dtypes"]["float64"]
        rule_rel = _rel(entry, entry["rule"][m]["abs_error"])
        best_rel = _rel(entry, entry["best"][m]["abs_error"])
        lines.append(
            f"- The rule of thumb is farthest from the model's optimal step at {c['name']} "
            f"({_METHOD_NAMES[m]}, float64): {number(off, 2)} times it, because |f^(k)| there "
            f"is far from |f|; its error at the rule step is {number(rule_rel, 2)} against a "
            f"best of {number(best_rel, 2)}.")
    return lines


def _tolerance_section(r):
    rows = []
    for x in r["summary"]:
        suggested = ("none: no digit is right" if x["needed_rtol"] >= 0.5 else
                     number(x["suggested_rtol"]))
        rows.append([_METHOD_NAMES[x["method"]], x["dtype"], _rule_step_text(x),
                     f"{number(x['needed_rtol'], 2)} ({x['worst_case']})", suggested,
                     x["needed_scaled_tol"]])
    return [
        "", "## The tolerance a gradient check needs", "",
        "A gradient check compares an analytic derivative with one numerical method at a fixed "
        "step, here the rule-of-thumb step (float64: diffkit's). To pass on every case it "
        "needs a relative tolerance of at least the largest relative error below (the worst "
        "case sets it); suggested: ten times that, up to a power of ten. The rounding error "
        "scales with |f|, not with f', so a relative tolerance alone cannot serve a vanishing "
        "gradient entry; the last column measures the errors against |f'| + |f| instead.",
        "",
        markdown_table(["method", "dtype", "step", "needed rtol (worst case)", "suggested rtol",
                        "needed tolerance on \\|f'\\| + \\|f\\|"], rows, digits=2),
    ]


def _ad_section(r):
    rows = []
    for c in r["cases"]:
        cells = [c["name"], len(c["ad"]["float64"]["variables"])]
        for dtype in r["dtypes"]:
            ad = c["ad"][dtype]
            for mode in ("reverse", "forward"):
                rels = [e / abs(g) for g, e in zip(ad["reference"], ad[mode]) if g]
                cells.append(_digits(max(rels)) if rels else "n/a")
        f32 = c["dtypes"]["float32"]
        best = min(_rel(f32, f32["best"][m]["abs_error"]) for m in ("forward", "central",
                                                                       "richardson"))
        cells.append(_digits(best))
        rows.append(cells)
    reverse32 = next(x for x in r["ad_summary"] if x["mode"] == "reverse"
                     and x["dtype"] == "float32")
    forward32 = next(x for x in r["ad_summary"] if x["mode"] == "forward"
                     and x["dtype"] == "float32")
    return [
        "", "## AD itself in float32", "",
        "Reverse and forward mode over every variable of each case (its whole gradient, not "
        "only the studied entry), from float32 inputs (0-d float32 arrays: `dk.grad` and "
        "`dk.jvp` take a NumPy scalar as a Python float, that is float64) and from float64 "
        "ones, against the reference at the same point. Digits: -log10 of the largest "
        "relative error over the nonzero entries. AD has no step, so nothing is subtracted: "
        f"in float32 reverse mode keeps {_digits(reverse32['max_rel_error'])} digits or more "
        f"(worst: {reverse32['worst_case']}), forward mode "
        f"{_digits(forward32['max_rel_error'])} (worst: {forward32['worst_case']}), where the "
        "best float32 finite difference of the studied entry, at its best step, keeps the "
        "digits of the last column.",
        "",
        markdown_table(["case", "variables", "float64 reverse", "float64 forward",
                        "float32 reverse", "float32 forward",
                        "float32 best finite difference"], rows),
    ]


def _diffkit_section(r):
    rows, covered, total = [], 0, 0
    for c in r["cases"]:
        entry = c["dtypes"]["float64"]
        for m, x in entry["diffkit"].items():
            total += 1
            covered += x["estimate"] >= x["abs_error"]
            rows.append([c["name"], _METHOD_NAMES[m], number(x["step"], 2), x["scheme"],
                         _rel(entry, x["abs_error"]), _rel(entry, x["estimate"]),
                         "yes" if x["estimate"] >= x["abs_error"] else "**no**"])
    return [
        "", "## diffkit's own numerical derivatives (float64)", "",
        "`diffkit.numeric` on each case: the step it chose, its scheme, its relative error "
        "against the reference and its own error estimate (relative). The estimate bounds "
        f"the error in {covered} of {total}.",
        "",
        markdown_table(["case", "method", "step", "scheme", "error", "estimate",
                        "estimate >= error"], rows, digits=2),
    ]
