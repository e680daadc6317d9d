"""The vanishing-gradient study's page: products of activation derivatives by depth, the
per-layer gradients at depth 10, the cross-checks and the cure; two plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffkit.report.plots import COLORS, figure, positive, save
from diffkit.report.tables import markdown_table, number, plural

TITLE = "Vanishing gradients along single-unit chains"
KEY_PLOT = "vanishing_layers.png"


def headline(result: dict) -> str:
    """Return the index line: sigmoid's median product and ReLU's dead share at depth 10."""
    relu = result["activations"]["relu"]
    sigmoid = result["activations"]["sigmoid"]
    at = min(10, len(relu["depths"])) - 1
    return (f"depth {at + 1}: sigmoid median product {number(sigmoid['product_median'][at])}"
            f" (bound {number(sigmoid['bound'][at])}); ReLU dead in "
            f"{relu['zero_fraction'][at]:.1%} of {result['inits']} inits; leaky ReLU never 0")


_SHOWN_DEPTHS = (1, 5, 10, 20, 30, 50)


def sections(r):
    """Return the page's Markdown lines: the body, and the timing section's."""
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
    body = [
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
    body += [
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
    return body, timing


def _layer_rows(acts):
    rows = []
    for name, a in acts.items():
        rows.append([name, *a["layer_grads_depth10"]])
        if 0 in a["layer_grads_depth10"]:
            live = max(a["layer_grads_depth10_nonzero_count"])
            medians = a["layer_grads_depth10_nonzero_median"]
            rows.append([f"{name}, the {plural(live, 'live init')}", *medians])
    return rows


def plots(result: dict, out: Path) -> list:
    """Draw the per-layer |dC/dw_i| profile and the product-vs-depth panels; return file names.

    Example:
        plots(run_study("vanishing", quick=True), Path("."))
        ['vanishing_layers.png', 'vanishing_products.png']
    """
    activations = result["activations"]
    fig = figure(9.5, 5)
    ax = fig.add_subplot()
    for name, data in activations.items():
        layers = np.arange(1, len(data["layer_grads_depth10"]) + 1)
        median = np.asarray(data["layer_grads_depth10"])
        if np.any(median == 0):
            live = max(data["layer_grads_depth10_nonzero_count"])
            ax.plot(layers, positive(data["layer_grads_depth10_nonzero_median"]), "o--",
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
    files = [save(fig, out, "vanishing_layers.png")]

    fig = figure(13, 6.5)
    axes = fig.subplots(2, 4, sharex=True)
    for ax, (name, data) in zip(axes.flat, activations.items()):
        depths = np.asarray(data["depths"])
        color = COLORS.get(name)
        ax.fill_between(depths, positive(data["abs_product_p05"]),
                        positive(data["abs_product_p95"]), color=color, alpha=0.25,
                        label="5%-95% of |product|")
        ax.plot(depths, positive(data["abs_product_median"]), color=color,
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
    files.append(save(fig, out, "vanishing_products.png"))
    return files
