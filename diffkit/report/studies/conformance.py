"""The conformance study's page: the matrix of ops by engines (ok, WRONG, the value chosen at a
kink, unsupported), what is wrong and where, the kink conventions in words, the properties."""

from __future__ import annotations

from pathlib import Path

from diffkit.report.plots import figure, save
from diffkit.report.tables import markdown_table, number

TITLE = "Conformance: AD engines side by side, op by op"
KEY_PLOT = "conformance.png"
NAMES = {"article": "the article's engine"}  # how a label reads in a sentence
UNSUPPORTED = "–"
VERDICT_COLORS = {"ok": "#4daf4a", "convention": "#80b1d3", "WRONG": "#e41a1c",
                  "unsupported": "#eeeeee"}


def _name(label: str) -> str:
    return NAMES.get(label, label)


def _names(labels, word: str = "and") -> str:
    """'a', 'a and b', 'a, b and c' (or with `word` in place of and)."""
    words = [_name(x) for x in labels]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {word} " + words[-1]


def _sentence(text: str) -> str:
    """text at the start of a sentence: "the article's engine" capitalised, a library's name
    (micrograd, torch) as its authors write it."""
    return "T" + text[1:] if text.startswith("the ") else text


def _point(values) -> str:
    return "(" + ", ".join(number(v) for v in values) + ")" if len(values) > 1 else number(
        values[0])


def _expected(value) -> str:
    if isinstance(value, list):
        return f"between {number(value[0])} and {number(value[1])}"
    return number(value)


def _got(value) -> str:
    return value if isinstance(value, str) else number(value)


def _choices(op: dict) -> dict:
    """(point, what) -> the value an engine chose there, from its op's conventions."""
    return {(tuple(c["point"]), c["what"]): c["got"] for c in op["conventions"]}


def cell(op: dict) -> str:
    """Return an op's matrix cell: ok, **WRONG**, convention (the values chosen), or – .

    Example:
        >>> cell({"verdict": "convention", "conventions": [{"point": [0.0], "what": "d/dx",
        ...       "got": 0.0, "interval": [0.0, 1.0]}]})
        'convention (0)'
    """
    verdict = op["verdict"]
    if verdict == "unsupported":
        return UNSUPPORTED
    if verdict == "WRONG":
        return "**WRONG**"
    if verdict == "ok":
        return "ok"
    by_what = {}
    for c in op["conventions"]:
        by_what.setdefault(c["what"], []).append(number(c["got"]))
    parts = [" / ".join(dict.fromkeys(values)) for values in by_what.values()]
    if len(parts) == 1:
        return f"convention ({parts[0]})"
    return "convention (" + ", ".join(f"{what} {p}" for what, p in zip(by_what, parts)) + ")"


def _failures(entry: dict) -> list:
    """Short phrases: what keeps an engine from conforming."""
    out = [f"{name} WRONG" for name, op in entry["ops"].items() if op["verdict"] == "WRONG"]
    p = entry["properties"]
    if p["mutates_inputs"]:
        out.append(f"{', '.join(p['mutating_ops'])} mutates its input")
    if not p["repeatable"]:
        out.append(f"a second gradients() call differs ({', '.join(p['unrepeatable_ops'])})")
    if p["max_depth"] is not None and p["max_depth"] < p["depth_required"]:
        error = (p["depth_error"] or "").split(" at depth")[0]
        out.append(f"chains stop after depth {p['max_depth']} ({error})")
    if p["cost_conforms"] is False:
        factor = p["cost_factor"]
        out.append("cost grows " + (f"{number(factor, 3)}x" if factor is not None else
                                    "faster than a tape's") + " per step")
    if entry["compositions"]["wrong"]:
        out.append(f"{entry['compositions']['wrong']} compositions wrong")
    return out


def _kink_groups(result: dict, op: str) -> tuple:
    """(groups, wrong, unsupported): engines grouped by the values they chose at op's kink
    points (a tuple of (point, what, value) per group key), the engines whose op is WRONG, and
    those without the op."""
    groups, wrong, unsupported = {}, [], []
    for label in result["present"]:
        entry = result["engines"][label]["ops"][op]
        if entry["verdict"] == "unsupported":
            unsupported.append(label)
            continue
        if entry["verdict"] == "WRONG":
            wrong.append(label)
        chosen = _choices(entry)
        key = tuple((tuple(k["point"]), what, chosen.get((tuple(k["point"]), what)))
                    for k in result["kinks"][op] for what in k["one_sided"])
        groups.setdefault(key, []).append(label)
    return groups, wrong, unsupported


def _choice_text(key, unary: bool) -> str:
    """The values of one group of engines, in words."""
    values = [v for _, _, v in key]
    if any(v is None for v in values):
        return "no convention reported (see the matrix)"
    whats = list(dict.fromkeys(what for _, what, _ in key))
    per_what = {w: [v for _, what, v in key if what == w] for w in whats}
    if all(len(set(vs)) == 1 for vs in per_what.values()):
        if unary:
            return number(values[0])
        return " and ".join(f"{w} = {number(vs[0])}" for w, vs in per_what.items()) + \
            " at every tie"
    points = list(dict.fromkeys(p for p, _, _ in key))
    return "; ".join(f"{', '.join(number(v) for p2, _, v in key if p2 == p)} at {_point(p)}"
                     for p in points)


def kink_sentences(result: dict) -> list:
    """One sentence per op with a kink: the one-sided derivatives there and the value each
    engine chose (engines that chose the same grouped), generated from the measurements."""
    lines = []
    for op, kinks in result["kinks"].items():
        groups, wrong, unsupported = _kink_groups(result, op)
        if not groups:
            continue
        sides = kinks[0]["one_sided"]
        unary = len(sides) == 1
        if all(lo == hi for k in kinks for lo, hi in k["one_sided"].values()):
            values = " and ".join(number(lo) for lo, _ in sides.values())
            lines.append(f"- **{op}** at {_point(kinks[0]['point'])}: both one-sided "
                         f"derivatives are {values}, so there is nothing to choose; "
                         f"{_names([x for g in groups.values() for x in g])} "
                         f"{'is' if sum(map(len, groups.values())) == 1 else 'are'} checked "
                         f"there like anywhere else.")
            continue
        if unary:
            low, high = sides["d/dx"]
            where = (f"**{op}'({number(kinks[0]['point'][0])})**, between the one-sided "
                     f"derivatives {number(low)} and {number(high)}")
        else:
            ties = _names([_point(k["point"]) for k in kinks])
            bounds = {tuple(v) for k in kinks for v in k["one_sided"].values()}
            between = (f"each partial between {number(min(b[0] for b in bounds))} and "
                       f"{number(max(b[1] for b in bounds))}")
            where = f"**{op}** at ties {ties}, {between}"
        said = "; ".join(f"{_choice_text(key, unary)} in {_names(labels)}"
                         for key, labels in groups.items())
        notes = []
        if wrong:
            notes.append(f"the {op} of {_names(wrong)} is WRONG, see above")
        if unsupported:
            notes.append(f"{_names(unsupported)} {'has' if len(unsupported) == 1 else 'have'} "
                         f"no {op}")
        lines.append(f"- {where}: {said}" + (f" ({'; '.join(notes)})" if notes else "") + ".")
    return lines


def _differing_kinks(result: dict) -> list:
    """Short phrases for the kinks where engines chose differently, e.g. "abs'(0) = 0 (diffkit,
    torch) or 1 (jax)"."""
    out = []
    for op, kinks in result["kinks"].items():
        groups, wrong, _ = _kink_groups(result, op)
        groups = {k: [x for x in v if x not in wrong] for k, v in groups.items()}
        groups = {k: v for k, v in groups.items() if v}
        if len(groups) < 2:
            continue
        unary = len(kinks[0]["one_sided"]) == 1
        name = f"{op}'({number(kinks[0]['point'][0])})" if unary else f"{op} at ties"
        out.append(f"{name} = " + " or ".join(
            f"{_choice_text(key, unary)} ({', '.join(_name(x) for x in labels)})"
            for key, labels in groups.items()))
    return out


def headline(result: dict) -> str:
    """Return the index line: who conforms, what keeps the others from it, where kink
    conventions differ, which engines are absent."""
    present = result["present"]
    agree = [x for x in present if result["engines"][x]["agree"]]
    parts = [f"{len(present)} engine{'' if len(present) == 1 else 's'} x "
             f"{len(result['ops'])} ops: "
             + (f"{_names(agree)} conform{'s' if len(agree) == 1 else ''}" if agree
                else "none conforms")]
    for label in present:
        if label not in agree:
            parts.append(f"{_name(label)}: {', '.join(_failures(result['engines'][label]))}")
    differing = _differing_kinks(result)
    if differing:
        parts.append("; ".join(differing))
    if result["absent"]:
        parts.append(f"absent: {', '.join(result['absent'])}")
    if result["parameters"]["not_requested"]:
        parts.append("not run: " + ", ".join(
            _name(x) for x in result["parameters"]["not_requested"]))
    return "; ".join(parts)


def _engines_lines(result: dict) -> list:
    p = result["parameters"]
    named = [_name(x) if result["engines"][x]["engine"] == _name(x) else
             f"{_name(x)} (`{result['engines'][x]['engine']}`)" for x in result["present"]]
    lines = [f"Engines checked: {', '.join(named)}." if named else "No engine could be loaded."]
    for label, why in result["absent"].items():
        lines.append(f"- **{_name(label)}** is absent: {why['reason']}; to include it: "
                     f"{why['install']}.")
    if p["not_requested"] and p["chosen"]:
        lines.append(f"- Not requested: {_names(p['not_requested'])}.")
    elif p["not_requested"]:
        lines.append(f"- Not run in quick mode: {_names(p['not_requested'])} (their imports "
                     f"alone take seconds; the full report runs them).")
    return lines


def _mode_lines(result: dict) -> list:
    p = result["parameters"]
    points, full = sum(p["points"].values()), sum(p["full_points"].values())
    depths = f"{number(p['depths'][0])} to {number(p['depths'][-1])}"
    deeper = ", ".join(number(d) for d in p["full_depths"] if d not in p["depths"])
    if p["quick"]:
        return [
            f"**Quick mode** changed this page: only the engines written in plain Python; "
            f"{points} points over the {len(p['points'])} ops instead of {full} (no tails, "
            f"nothing near a kink; generic points, edges and the kinks themselves are kept); "
            f"part of the article's catalog and {p['random_expressions']} random expressions "
            f"instead of all of it and {p['full_random_expressions']}; a shorter logistic map "
            f"for the cost factor. Chains of {depths} operations, as in the full report."]
    return [
        f"Every op at all its {full} points, the whole catalog and {p['random_expressions']} "
        f"random expressions, the cost factor over the full logistic map: what `diffkit "
        f"conformance ENGINE` does, except that chains go from {depths} operations (the "
        f"depth an engine must reach) and not to {deeper}, which takes JAX about half a "
        f"minute alone."]


def sections(result: dict):
    """Return the page's Markdown lines: the body, and the timing section's."""
    present = result["present"]
    engines = result["engines"]
    body = [
        "Each engine is driven through its adapter by `diffkit.conformance`, exactly as "
        "`diffkit conformance ENGINE` drives it: every operation alone at generic points, tails, "
        "domain edges, near and exactly at kinks, its value and derivatives judged against "
        "diffkit's symbolic reference; the article's catalog and seeded random expressions "
        "replayed in the engine with its own ops; its properties (inputs left unchanged, the "
        "same answer twice, the deepest chain that differentiates, the cost per step of the "
        "logistic map). At a kink any value between the one-sided derivatives is a "
        "*convention*, reported, not an error.",
        "", *_engines_lines(result), "", *_mode_lines(result), "",
    ]
    if not present:
        return body, [f"{result['timing']['seconds']:.1f} s for the whole study."]
    agree = [x for x in present if engines[x]["agree"]]
    verdicts = []
    if agree:
        verdicts.append(f"**{_names(agree)} conform{'s' if len(agree) == 1 else ''}.**")
    for label in present:
        if label not in agree:
            verdicts.append(f"**{_sentence(_name(label))} does not**: "
                            f"{'; '.join(_failures(engines[label]))}.")
    body += [" ".join(verdicts), "", "## The matrix", "",
             "ok: right at every point; convention (v): right, and at the kink it chose v "
             "(per partial derivative for two inputs, over the ties checked); **WRONG**: a "
             f"derivative or value outside the tolerance; {UNSUPPORTED}: not among the "
             "engine's ops.", ""]
    body.append(markdown_table(
        ["op", *[_name(x) for x in present]],
        [[op, *[cell(engines[x]["ops"][op]) for x in present]] for op in result["ops"]]))
    body += ["", "## What is wrong, and where", ""]
    wrong_lines = []
    for label in present:
        for op, entry in engines[label]["ops"].items():
            if entry["verdict"] != "WRONG":
                continue
            w = entry["first_wrong"]
            wrong_lines.append(
                f"- {_sentence(_name(label))}, **{op}**: {entry['wrong']} of "
                f"{entry['checked']} points wrong, largest relative error "
                f"{number(entry['max_rel_error'], 3)}; first at "
                f"{_point(w['point'])} ({w['kind']}): {w['what']} expected "
                f"{_expected(w['expected'])}, got {_got(w['got'])}"
                + (f"; it also changes its input ({entry['mutates_input']})"
                   if entry["mutates_input"] else "") + ".")
        c = engines[label]["compositions"]
        if c["wrong"]:
            why = (" Every one uses an op found WRONG or mutating its input above."
                   if c["explained"] else "")
            wrong_lines.append(f"- {_sentence(_name(label))}: {c['wrong']} of {c['checked']} "
                               f"compositions wrong.{why} For example:")
            for e in c["examples"][:3]:
                wrong_lines.append(f"  - `{e['name']}`: {e['what']} expected "
                                   f"{_expected(e['expected'])}, got {_got(e['got'])}")
    body += wrong_lines or ["Nothing: every op of every engine is right at every point."]
    body += ["", "## Kink conventions, as measured", "",
             "The value each engine's derivative takes exactly at the switch, from the "
             "measurements above:", "", *kink_sentences(result), "",
             "## Properties", "", _properties_table(result), ""]
    body += ["Compositions: " + "; ".join(
        f"{_name(x)} {engines[x]['compositions']['checked']} checked, "
        f"{engines[x]['compositions']['wrong']} wrong, {engines[x]['compositions']['skipped']} "
        f"skipped (an op the engine lacks)" for x in present) + "."]
    timing = [f"{result['timing']['seconds']:.1f} s for the whole study.", "",
              markdown_table(["engine", "load s", "checks s", "cost factor (by time)"],
                             [[_name(x), f"{t['load_seconds']:.2f}", f"{t['seconds']:.2f}",
                               f"{t['cost_factor']:.2f} ({t['cost_note']})"
                               if "cost_factor" in t else "- (call counts: above)"]
                              for x, t in result["timing"]["engines"].items()])]
    return body, timing


def _properties_table(result: dict) -> str:
    rows = []
    p0 = result["parameters"]
    for label in result["present"]:
        entry = result["engines"][label]
        p = entry["properties"]
        depth = "not measured" if p["max_depth"] is None else (
            f"{number(p['max_depth'])} ({p['depth_op']})")
        if p["cost_factor"] is not None:
            cost = f"{number(p['cost_factor'], 3)} ({p['cost_measure']})"
        elif p["cost_measure"] == "time":
            cost = ("≤ " if p["cost_conforms"] else "> ") + \
                f"{number(p0['cost_limit'])} (by time: see timing)"
        else:
            cost = "not measured"
        rows.append([_name(label),
                     "NO: " + ", ".join(p["mutating_ops"]) if p["mutates_inputs"] else "yes",
                     "yes" if p["repeatable"] else "NO: " + ", ".join(p["unrepeatable_ops"]),
                     depth, p["depth_error"] or "-", cost,
                     "conforms" if entry["agree"] else "does NOT conform"])
    deepest = number(p0["depths"][-1])
    return markdown_table(
        ["engine", "inputs unchanged", "repeatable", f"deepest chain (tried to {deepest})",
         "first failure", "cost factor per step", "verdict"], rows)


def plots(result: dict, out: Path) -> list:
    """Draw the matrix as coloured cells (ok, convention, WRONG, unsupported) with the value
    chosen at a kink written in; return the file names (none when no engine ran).

    Example:
        plots(run_study("conformance", quick=True), Path("."))
        ['conformance.png']
    """
    present, ops = result["present"], result["ops"]
    if not present:
        return []
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    order = list(VERDICT_COLORS)
    codes = [[order.index(result["engines"][x]["ops"][op]["verdict"]) for x in present]
             for op in ops]
    fig = figure(1.6 + 1.25 * len(present), 0.8 + 0.3 * len(ops))
    ax = fig.add_subplot()
    ax.imshow(codes, cmap=ListedColormap(list(VERDICT_COLORS.values())), vmin=0,
              vmax=len(order) - 1, aspect="auto")
    for i, op in enumerate(ops):
        for j, x in enumerate(present):
            text = cell(result["engines"][x]["ops"][op]).replace("**", "")
            text = text.replace("convention (", "chose ").rstrip(")").replace(UNSUPPORTED, "")
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(present)), [_name(x).replace("the article's engine",
                                                         "article's\nengine")
                                        for x in present], fontsize=8)
    ax.set_yticks(range(len(ops)), ops, fontsize=8)
    ax.xaxis.tick_top()
    fig.suptitle("Each engine's derivatives against diffkit's reference, op by op "
                 "(chose v: its value at the kink)", fontsize=8)
    ax.set_xticks([j - 0.5 for j in range(1, len(present))], minor=True)
    ax.set_yticks([i - 0.5 for i in range(1, len(ops))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.legend(handles=[Patch(color=c, label=v) for v, c in VERDICT_COLORS.items()],
              loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=4, fontsize=7,
              frameon=False)
    return [save(fig, out, "conformance.png")]
