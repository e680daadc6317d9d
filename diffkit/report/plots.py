"""PNG plots of the studies, drawn with matplotlib's Agg backend on bare Figures (no pyplot
state); matplotlib is optional and imported only here, only when a plot is drawn."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

COLORS = {
    "sigmoid": "tab:blue", "tanh": "tab:orange", "relu": "tab:red", "leaky_relu": "tab:green",
    "softplus": "tab:purple", "elu": "tab:brown", "silu": "tab:pink",
}
DPI = 110
# Fixed metadata: the same numbers give the same PNG bytes, whatever matplotlib's version.
METADATA = {"Software": None}


def available() -> bool:
    """True when matplotlib can be imported (the `plots` extra is installed).

    Example:
        >>> isinstance(available(), bool)
        True
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width, height, layout="constrained"):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _save(fig, out: Path, name: str) -> str:
    fig.savefig(out / name, metadata=METADATA)
    return name


def _positive(values):
    """Values for a log axis: zeros (and negatives) become NaN, which matplotlib leaves out."""
    values = np.abs(np.asarray(values, dtype=float))
    return np.where(values > 0, values, np.nan)


def vanishing_plots(result: dict, out: Path) -> list:
    """Draw the per-layer |dC/dw_i| profile and the product-vs-depth panels; return file names.

    Example:
        vanishing_plots(run_study("vanishing", quick=True), Path("."))
        ['vanishing_layers.png', 'vanishing_products.png']
    """
    activations = result["activations"]
    fig = _figure(9.5, 5)
    ax = fig.add_subplot()
    for name, data in activations.items():
        layers = np.arange(1, len(data["layer_grads_depth10"]) + 1)
        median = np.asarray(data["layer_grads_depth10"])
        if np.any(median == 0):
            live = max(data["layer_grads_depth10_nonzero_count"])
            ax.plot(layers, _positive(data["layer_grads_depth10_nonzero_median"]), "o--",
                    color=COLORS.get(name), label=f"{name}: median is 0;\nmedian of the {live} "
                    f"live init{'' if live == 1 else 's'}")
        else:
            ax.plot(layers, median, "o-", color=COLORS.get(name), label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer i (1 = nearest the input)")
    ax.set_ylabel("median |dC/dw_i| over inits")
    ax.set_title(f"Per-layer gradient, chain of depth 10, C = (3 - y)^2 "
                 f"({result['inits']} inits, w ~ N(0, 1), x = 1)")
    ax.set_xticks(range(1, 11))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    files = [_save(fig, out, "vanishing_layers.png")]

    fig = _figure(13, 6.5)
    axes = fig.subplots(2, 4, sharex=True)
    for ax, (name, data) in zip(axes.flat, activations.items()):
        depths = np.asarray(data["depths"])
        color = COLORS.get(name)
        ax.fill_between(depths, _positive(data["abs_product_p05"]),
                        _positive(data["abs_product_p95"]), color=color, alpha=0.25,
                        label="5%-95% of |product|")
        ax.plot(depths, _positive(data["abs_product_median"]), color=color,
                label="median |product|")
        ax.plot(depths, data["product_abs_max"], ":", color=color, label="largest |product|")
        ax.plot(depths, data["bound"], "k--", label=f"bound ({data['sup_derivative']:.4g})^depth")
        if max(data["abs_product_median"]) == 0:
            ax.text(0.55, 0.82, "median |product| = 0 at every depth:\nmost chains are dead",
                    transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    ax = axes.flat[-1]
    zero = [name for name, data in activations.items() if max(data["zero_fraction"]) > 0]
    for name in zero:
        data = activations[name]
        ax.plot(data["depths"], data["zero_fraction"], color=COLORS.get(name), label=name)
    depths = np.asarray(activations["relu"]["depths"], dtype=float)
    ax.plot(depths, 1 - 0.5**depths, "k:", label="1 - 2^-depth")
    others = [name for name in activations if name not in zero]
    ax.plot([], [], " ", label="0 at every depth:\n" + ", ".join(others))
    ax.set_title("share of inits with product = 0")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    for ax in axes[1]:
        ax.set_xlabel("depth")
    fig.suptitle(f"Product of activation derivatives prod f'(h_i) along the chain vs its bound "
                 f"({result['inits']} inits)")
    files.append(_save(fig, out, "vanishing_products.png"))
    return files


def xor_plots(result: dict, out: Path) -> list:
    """Draw the loss curves of every seed and the learned decision surfaces; return file names.

    Example:
        xor_plots(run_study("xor", quick=True), Path("."))
        ['xor_loss.png', 'xor_surface.png']
    """
    from diffkit.experiments.catalog import xor_network

    scalar = [r for r in result["runs"] if r["style"] == "scalar"]
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    every = result["curve_every"]
    for run in scalar:
        epochs = np.arange(len(run["loss_curve"])) * every
        color = "tab:blue" if run["solved"] else "tab:red"
        ax.plot(epochs, run["loss_curve"], color=color, alpha=0.6, lw=1)
    ax.plot([], [], color="tab:blue", label="solved")
    ax.plot([], [], color="tab:red", label="stuck")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("summed squared error")
    ax.set_title(f"XOR, 2-2-1 sigmoid net, lr {result['lr']}: {len(scalar)} seeds")
    ax.grid(True, alpha=0.3)
    ax.legend()
    files = [_save(fig, out, "xor_loss.png")]

    shown = [r for r in scalar if r["solved"]][:1] + [r for r in scalar if not r["solved"]][:2]
    if shown:
        fig = _figure(4.2 * len(shown), 4)
        axes = np.atleast_1d(fig.subplots(1, len(shown)))
        grid = np.linspace(-0.25, 1.25, 151)
        x1, x2 = np.meshgrid(grid, grid)
        for ax, run in zip(axes, shown):
            surface = xor_network(x1, x2, *run["final_params"])
            image = ax.contourf(x1, x2, surface, levels=np.linspace(0, 1, 11), cmap="coolwarm")
            ax.contour(x1, x2, surface, levels=[0.5], colors="k", linewidths=1)
            for key, target in (("00", 0), ("01", 1), ("10", 1), ("11", 0)):
                ax.scatter(int(key[0]), int(key[1]), s=80, marker="o" if target else "s",
                           c="white", edgecolors="k")
                ax.annotate(f"{run['outputs'][key]:.2f}", (int(key[0]), int(key[1])),
                            textcoords="offset points", xytext=(8, 8), fontsize=9)
            state = "solved" if run["solved"] else "stuck"
            ax.set_title(f"seed {run['seed']} ({state})")
            ax.set_xlabel("x1")
            ax.set_ylabel("x2")
        fig.colorbar(image, ax=list(axes), label="network output")
        fig.suptitle("Learned decision surfaces: circles have target 1, squares target 0; "
                     "the black line is output 0.5")
        files.append(_save(fig, out, "xor_surface.png"))
    return files


def swell_plots(result: dict, out: Path) -> list:
    """Draw derivative size vs n (SymPy raw, after cse, tape entries, paths); return file names.

    Example:
        swell_plots(run_study("swell", quick=True), Path("."))
        ['swell.png']
    """
    rows = result["logistic_map"]
    n = [r["n"] for r in rows]
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    ax.plot(n, _positive([r["symbolic_ops"] for r in rows]), "o-", label="SymPy diff, count_ops")
    ax.plot(n, _positive([r["symbolic_ops_cse"] for r in rows]), "s-",
            label="SymPy diff after cse, count_ops")
    ax.plot(n, [r["tape_nodes"] for r in rows], "^-", label="diffkit tape entries")
    ax.plot(n, [r["paths"] for r in rows], "x--", label="paths a path-walking backward pass takes")
    ax.set_yscale("log")
    ax.set_xlabel("n (logistic map l_n, l_(k+1) = 4 l_k (1 - l_k))")
    ax.set_ylabel("size")
    ax.set_title("Expression swell: derivative of the logistic map")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return [_save(fig, out, "swell.png")]




# ---- accuracy ----

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


def accuracy_plots(result: dict, out: Path) -> list:
    """Draw the error-against-step curves: a key figure for one case in both dtypes, every case
    in float64 and in float32, and the complex step down to 1e-200; return file names.

    Example:
        accuracy_plots(run_study("accuracy", quick=True), Path("."))
        ['accuracy.png', 'accuracy_float64.png', 'accuracy_float32.png', 'accuracy_complex.png']
    """
    cases = result["cases"]
    key = next((c for c in cases if c["name"] == KEY_ACCURACY_CASE), cases[0])
    fig = _figure(11, 4.6)
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
    files = [_save(fig, out, "accuracy.png")]

    for dtype in ("float64", "float32"):
        columns = 4
        rows = math.ceil(len(cases) / columns)
        # fixed margins: the constrained layout of many log axes takes seconds to solve
        fig = _figure(16, 3.6 * rows + 0.8, layout=None)
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
        files.append(_save(fig, out, f"accuracy_{dtype}.png"))

    fig = _figure(12, 4.6)
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
    files.append(_save(fig, out, "accuracy_complex.png"))
    return files


# ---- agreement (drawn for the index only: the agreement page has no plot) ----


def agreement_index_plot(result: dict, out: Path) -> str:
    """Draw each case's largest relative error per method (the reference excluded) as one dot
    chart, agreeing methods filled and disagreeing ones crossed; return the file name.

    Example:
        agreement_index_plot(json.loads(Path("reports/agreement.json").read_text()), Path("."))
        'agreement.png'
    """
    cases = result["cases"]
    methods = [m for m in result["methods"] if m != "symbolic"]
    fig = _figure(8, 0.28 * len(cases) + 1.4)
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
    return _save(fig, out, "agreement.png")


# The figure the index shows inline for each study (the first PNG of a study otherwise).
KEY_PLOTS = {"agreement": "agreement.png", "vanishing": "vanishing_layers.png",
             "xor": "xor_loss.png", "swell": "swell.png", "accuracy": "accuracy.png"}
PLOTS = {"vanishing": vanishing_plots, "xor": xor_plots, "swell": swell_plots,
         "accuracy": accuracy_plots}
