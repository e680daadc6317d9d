"""The XOR study's page: success rate, the two training styles' trajectories and every run;
the loss curves and decision surfaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffkit.experiments.catalog import xor_network
from diffkit.experiments.xor import QUICK_EPOCHS, QUICK_SEEDS
from diffkit.report.plots import figure, save
from diffkit.report.tables import markdown_table, number, plural

TITLE = "XOR: the 2-2-1 sigmoid network, trained two ways"
KEY_PLOT = "xor_loss.png"


def headline(result: dict) -> str:
    """Return the index line: seeds, epochs, success rate and how closely the styles agree.

    Example:
        >>> headline({"seeds": 24, "epochs": 30000, "success_rate": 0.75,
        ...           "trajectory_max_diff": 1e-14})
        '24 seeds x 2 styles, 30000 epochs: success rate 75%; styles agree to 1e-14'
    """
    batched = result.get("batched_seeds", result["seeds"])
    styles = (" x 2 styles" if batched == result["seeds"] else
              f" (the batched graph on {_first_seeds(batched)})")
    return (f"{result['seeds']} seeds{styles}, {result['epochs']} epochs: success rate "
            f"{result['success_rate']:.0%}; styles agree to "
            f"{number(result['trajectory_max_diff'], 2)}")


def sections(r):
    """Return the page's Markdown lines: the body, and the timing section's."""
    runs = r["runs"]
    scalar = [x for x in runs if x["style"] == "scalar"]
    solved = [x for x in scalar if x["solved"]]
    keys = ("00", "01", "10", "11")
    mean = {k: sum(x["outputs"][k] for x in solved) / len(solved) for k in keys} if solved else {}
    batched = r.get("batched_seeds", r["seeds"])
    body = [
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
    return body, timing


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
    if batched != min(full.get("batched_seeds", full["seeds"]), r["seeds"]):
        changes.append(f"the batched graph for {_first_seeds(batched)} only, where the two "
                       "styles are compared")
    if not changes:
        return ["", "**Quick mode** (`diffkit report --quick`) changed nothing here."]
    return [
        "",
        f"**Quick mode** (`diffkit report --quick`) changed {plural(len(changes), 'thing')}: "
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


def plots(result: dict, out: Path) -> list:
    """Draw the loss curves of every seed and the learned decision surfaces; return file names.

    Example:
        plots(run_study("xor", quick=True), Path("."))
        ['xor_loss.png', 'xor_surface.png']
    """
    scalar = [r for r in result["runs"] if r["style"] == "scalar"]
    fig = figure(8, 5)
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
    files = [save(fig, out, "xor_loss.png")]

    shown = [r for r in scalar if r["solved"]][:1] + [r for r in scalar if not r["solved"]][:2]
    if shown:
        fig = figure(4.2 * len(shown), 4)
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
        files.append(save(fig, out, "xor_surface.png"))
    return files
