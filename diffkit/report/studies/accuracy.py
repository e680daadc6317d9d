"""The accuracy study's page: the error model of finite differences and the complex step,
slopes, best steps against the rule of thumb, the tolerance a gradient check needs, AD in
float32 and diffkit's own numerical derivatives; the error-against-step plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from diffkit.report.plots import figure, save
from diffkit.report.tables import markdown_table, number, plural

TITLE = "Accuracy: how numerical derivatives fail, step by step"
KEY_PLOT = "accuracy.png"


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


def headline(r) -> str:
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


def sections(r):
    """Return the page's Markdown lines: the body, and the timing section's."""
    cases = r["cases"]
    eps64, eps32 = r["dtypes"]["float64"]["eps"], r["dtypes"]["float32"]["eps"]
    digits = min(c["dtypes"][d]["reference_digits"] for c in cases for d in r["dtypes"])
    body = [
        f"{plural(len(cases), 'case')}, each the derivative of a catalog function along one "
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
        body += [
            "", f"Every case in {dtype} (model step: the optimal step of the error model; for "
            "the complex step the largest step whose truncation stays below eps |f'|):", "",
            markdown_table(
                ["case", "method", "best error", "at step", "model step", "model error",
                 "rule step", "error at rule step", "rule / best"],
                [_case_row(c, m, dtype) for c in cases for m in r["methods"]],
                digits=3,
            ),
        ]
    body += _tolerance_section(r)
    body += _ad_section(r)
    body += _diffkit_section(r)
    timing = [f"{r['timing']['seconds']:.1f} s for the whole study."]
    return body, timing


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
    return (f"{number(fit['median'], 3)} (model {model}; {plural(fit['fits'], 'fit')}, "
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


METHOD_COLORS = {"forward": "tab:red", "central": "tab:blue", "richardson": "tab:green",
                 "complex_step": "tab:purple"}
METHOD_LABELS = {"forward": "forward", "central": "central", "richardson": "Richardson (central)",
                 "complex_step": "complex step"}
KEY_ACCURACY_CASE = "exp at 1"
ZERO_FLOOR = 1 / 8  # an error of exactly 0 is drawn at eps / 8, below anything measurable


def _sparse_log_ticks(ax, numticks=7):
    """A few labelled decades and no minor ticks: drawing hundreds of tick labels on log axes
    over many decades is most of the time these figures take."""
    from matplotlib.ticker import LogLocator, NullLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, numticks=numticks))
        axis.set_minor_locator(NullLocator())


def _relative_series(entry, method, floor):
    series = entry["series"][method]
    h = np.asarray(series["steps"], dtype=float)
    rel = np.asarray(series["abs_error"], dtype=float) / abs(entry["gradient"])
    return h, np.maximum(rel, floor)


def _accuracy_panel(ax, case, dtype, result, marks):
    """Relative error against the exact step, log-log: the four methods, the model's leading
    truncation term of each and the rounding term as guides, and the marked steps."""
    entry = case["dtypes"][dtype]
    eps = result["dtypes"][dtype]["eps"]
    floor = ZERO_FLOOR * eps
    gradient = abs(entry["gradient"])
    grid = np.logspace(-17, 0, 120)  # guides over the whole panel
    for method in ("forward", "central", "richardson", "complex_step"):
        color = METHOD_COLORS[method]
        h, rel = _relative_series(entry, method, floor)
        shown = h >= 1e-17
        ax.plot(h[shown], rel[shown], "-", color=color, lw=1.3, label=METHOD_LABELS[method])
        model = entry["model"][method]
        if model["coefficient"]:
            ax.plot(grid, model["coefficient"] * grid ** model["power"] / gradient, "--",
                    color=color, lw=0.7, alpha=0.6,
                    label=f"{METHOD_LABELS[method]}: model truncation")
        mark = marks(entry, method)
        if mark is not None:
            step, error = mark
            ax.axvline(step, color=color, lw=0.6, ls=":", alpha=0.8)
            ax.plot([step], [max(error / gradient, floor)], marker="D", ms=6, color=color,
                    markeredgecolor="k", ls="none")
    rounding = entry["model"]["forward"]["rounding"]
    ax.plot(grid, rounding / (grid * gradient), ":", color="k", lw=1, label="rounding ~ eps|f|/h")
    ax.axhline(eps, color="0.5", lw=0.6, ls="-.", label="eps")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-17, 1)
    ax.set_ylim(floor / 2, 10)
    _sparse_log_ticks(ax)
    ax.set_title(case["name"], fontsize=9)
    ax.grid(True, which="major", alpha=0.3)


def _diffkit_mark(entry, method):
    found = entry.get("diffkit", {}).get(method)
    if not found or not math.isfinite(found["step"]) or found["step"] < 1e-17:
        return None
    return found["step"], found["abs_error"]


def _rule_mark(entry, method):
    found = entry["rule"][method]
    if found["step"] < 1e-17:
        return None
    return found["step"], found["abs_error"]


def _marks_for(dtype):
    return _diffkit_mark if dtype == "float64" else _rule_mark


def _mark_note(dtype):
    if dtype == "float64":
        return "diamonds: diffkit's numeric module at the steps it chose"
    return "diamonds: the rule-of-thumb steps eps^(1/2), eps^(1/3), eps^(1/5)"


def plots(result: dict, out: Path) -> list:
    """Draw the error-against-step curves: a key figure for one case in both dtypes, every case
    in float64 and in float32, and the complex step down to 1e-200; return file names.

    Example:
        plots(run_study("accuracy", quick=True), Path("."))
        ['accuracy.png', 'accuracy_float64.png', 'accuracy_float32.png', 'accuracy_complex.png']
    """
    cases = result["cases"]
    key = next((c for c in cases if c["name"] == KEY_ACCURACY_CASE), cases[0])
    fig = figure(11, 4.6)
    axes = fig.subplots(1, 2)
    for ax, dtype in zip(axes, ("float64", "float32")):
        _accuracy_panel(ax, key, dtype, result, _marks_for(dtype))
        ax.set_title(f"{key['name']}, {dtype}")
        ax.set_xlabel("step h (exact: (x+h) - x)")
    axes[0].set_ylabel("relative error of f'")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    fig.suptitle("Truncation against rounding. Diamonds: float64, diffkit's numeric module at "
                 "the steps it chose; float32, the rule-of-thumb steps", fontsize=9)
    files = [save(fig, out, "accuracy.png")]

    for dtype in ("float64", "float32"):
        columns = 4
        rows = math.ceil(len(cases) / columns)
        # fixed margins: the constrained layout of many log axes takes seconds to solve
        fig = figure(16, 3.6 * rows + 0.8, layout=None)
        fig.subplots_adjust(left=0.05, right=0.99, top=0.93, bottom=0.15, wspace=0.06,
                            hspace=0.14)
        axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True)).ravel()
        for ax, case in zip(axes, cases):
            _accuracy_panel(ax, case, dtype, result, _marks_for(dtype))
        for ax in axes[len(cases):]:
            ax.set_visible(False)
        for ax in axes[-columns:]:
            ax.set_xlabel("step h")
        for ax in axes[::columns]:
            ax.set_ylabel("relative error of f'")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
        fig.suptitle(f"{dtype}: relative error against the 30-digit reference; dashed: the "
                     f"model's truncation terms, dotted: rounding; {_mark_note(dtype)}; "
                     "0 is drawn at eps/8", fontsize=9)
        files.append(save(fig, out, f"accuracy_{dtype}.png"))

    fig = figure(12, 4.6)
    axes = fig.subplots(1, 2, sharey=False)
    palette = [f"C{k}" for k in range(10)]
    for ax, dtype in zip(axes, ("float64", "float32")):
        eps = result["dtypes"][dtype]["eps"]
        for color, case in zip(palette, cases):
            h, rel = _relative_series(case["dtypes"][dtype], "complex_step", ZERO_FLOOR * eps)
            ax.plot(h, rel, "-", color=color, lw=1, label=case["name"])
        ax.axhline(eps, color="0.5", lw=0.6, ls="-.", label="eps")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _sparse_log_ticks(ax)
        if dtype == "float64":
            ax.set_xticks([10.0**-k for k in range(200, -1, -25)])
        ax.set_title(f"complex step, {dtype}")
        ax.set_xlabel("step h")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("relative error of f'")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle("The complex step subtracts nothing: no rounding regime down to 1e-200 "
                 "(float32: to its smallest normal number); 0 is drawn at eps/8", fontsize=9)
    files.append(save(fig, out, "accuracy_complex.png"))
    return files
