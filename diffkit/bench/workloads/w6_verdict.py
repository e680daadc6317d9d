"""W6, time to a verdict: dk.compare in process, `diffkit verify` as a new process and torch
gradcheck on sigmoid/tanh chains and coupled sigmoid units; a time limit per case
and the goal that dk.compare's cost grows about linearly in the number of variables."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np

from diffkit.bench.protocol import Target, Workload
from diffkit.bench.targets import format_seconds
from diffkit.bench.verdicts import Verdict, VerdictCase, case_lines, time_verdicts

NAME = "W6"
COUPLING = 0.1  # weight of the smoothness penalty that links neighbouring units
SLOPE_LIMIT = 1.2
ENGINE_TEXT = {"diffkit": "dk.compare in process", "diffkit-cli": "`diffkit verify` as a "
               "new process", "torch-gradcheck": "torch gradcheck"}


def chain_case(unit, depth, order, deadline, targets=None):
    """The VerdictCase of s_0 = x, s_k = unit(w_k s_(k-1)) for k = 1..depth, f = s_depth, in x
    and every w_k at a seeded point (x in [-1, 1], w_k in [0.5, 1.5])."""
    rng = np.random.default_rng(6)
    point = (float(rng.uniform(-1, 1)),) + tuple(float(w) for w in rng.uniform(0.5, 1.5, depth))
    names = ("x",) + tuple(f"w{k}" for k in range(1, depth + 1))
    text = "x"
    for k in range(1, depth + 1):
        text = f"{unit}(w{k}*{text})"

    def function(ops):
        activation = getattr(ops, unit)

        def f(x, *ws):
            s = x
            for w in ws:
                s = activation(w * s)
            return s

        return f

    return VerdictCase(
        f"{unit}{depth}/o{order}",
        f"{depth}-deep chain s_k = {unit}(w_k s_(k-1)), s_0 = x, f = s_{depth}: {depth + 1} "
        f"variables (x and the weights), order {order}",
        names, point, order, function, text, deadline, unit, dict(targets or {}),
    )


def units_case(n, order, deadline, targets=None, slope=False):
    """The VerdictCase of f(x_1..x_n) = sum_i sigmoid(c_i x_i) + COUPLING sum_i (x_(i+1) -
    x_i)^2: sigmoid units with a smoothness penalty linking neighbours (c_i fixed, seeded, 3
    decimals; x_i seeded in [-2, 2])."""
    rng = np.random.default_rng(7)
    weights = tuple(round(float(c), 3) for c in rng.uniform(0.5, 1.5, n))
    point = tuple(float(x) for x in rng.uniform(-2, 2, n))
    names = tuple(f"x{i}" for i in range(1, n + 1))
    units = [f"sigmoid({c!r}*{x})" for c, x in zip(weights, names)]
    links = [f"{COUPLING!r}*({b} - {a})**2" for a, b in zip(names, names[1:])]
    text = " + ".join(units + links)

    def function(ops):
        def f(*xs):
            total = ops.sigmoid(weights[0] * xs[0])
            for c, x in zip(weights[1:], xs[1:]):
                total = total + ops.sigmoid(c * x)
            for a, b in zip(xs, xs[1:]):
                total = total + COUPLING * (b - a) ** 2
            return total

        return f

    return VerdictCase(
        f"units{n}/o{order}",
        f"sum_i sigmoid(c_i x_i) + {COUPLING!r} sum_i (x_(i+1) - x_i)^2 over {n} variables "
        f"x_i, order {order}",
        names, point, order, function, text, deadline, f"units/o{order}", dict(targets or {}),
        slope,
    )


def comparison_problem(agree, reference, blamed, notes):
    """Why a diffkit verdict does not count (None: it is `agree`, with the symbolic reference)."""
    if not agree:
        return f"verdict disagree (methods off the reference: {', '.join(blamed) or 'none'})"
    if reference != "symbolic":
        return f"verdict without the symbolic reference: {notes[0] if notes else reference}"
    return None


def _first_use(dk):
    """A small compare, so that imports and first-use set-up are not charged to the first case."""
    dk.compare(lambda x, w: dk.tanh(dk.sigmoid(w * x)), 0.3, 0.7, order=2)


def build_diffkit(ns, case):
    from sympy.core.cache import clear_cache

    dk = ns.diffkit
    f = case.function(dk)
    _first_use(dk)

    def run():
        # each call starts as a process's first compare would: SymPy's cache would otherwise
        # hand the second call the derivatives of the first (3 to 10x faster on small chains)
        clear_cache()
        c = dk.compare(f, *case.point, names=case.names, order=case.order)
        blamed = [m.name for m in c.methods.values() if m.applicable and not m.agree]
        return Verdict(c.reference, comparison_problem(c.agree, c.reference, blamed, c.notes),
                       {m.name: m.seconds for m in c.methods.values()})

    return run


def verify_argv(command, case):
    """`diffkit verify TEXT --at NAME=VALUE,... --json [--order 2]` for the case."""
    at = ",".join(f"{name}={value!r}" for name, value in zip(case.names, case.point))
    order = ["--order", "2"] if case.order == 2 else []
    return [command, "verify", case.text, "--at", at, "--json", *order]


def build_cli(ns, case):
    argv = verify_argv(ns.command, case)

    def run():
        done = subprocess.run(argv, capture_output=True, text=True, timeout=case.deadline)
        if done.returncode not in (0, 1):
            lines = done.stderr.strip().splitlines() or ["(nothing on stderr)"]
            return Verdict("", f"exit status {done.returncode}: {lines[-1][:200]}")
        out = json.loads(done.stdout)
        if (done.returncode == 0) != out["agree"]:
            return Verdict(out["reference"], f"exit status {done.returncode} with agree = "
                                             f"{out['agree']}")
        blamed = [name for name, m in out["methods"].items() if m["applicable"] and not m["agree"]]
        return Verdict(out["reference"], comparison_problem(out["agree"], out["reference"],
                                                            blamed, out["notes"]),
                       out.get("timing", {}))

    return run


def build_gradcheck(ns, case):
    torch = ns.torch
    f = case.function(torch)
    seed = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradgradcheck(torch.sigmoid, (seed,))  # first-use set-up, as _first_use

    def run():
        inputs = tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True)
                       for v in case.point)
        ok = torch.autograd.gradcheck(f, inputs, raise_exception=False)
        if ok and case.order == 2:
            ok = torch.autograd.gradgradcheck(f, inputs, raise_exception=False)
        return Verdict("finite differences", None if ok else f"order {case.order} check failed")

    return run


BUILDERS = {"diffkit": build_diffkit, "diffkit-cli": build_cli,
            "torch-gradcheck": build_gradcheck}
CASES = (
    chain_case("sigmoid", 10, 1, deadline=6.0),
    chain_case("sigmoid", 10, 2, deadline=6.0, targets={"diffkit": 1.0, "diffkit-cli": 3.0}),
    chain_case("tanh", 30, 1, deadline=6.0, targets={"diffkit": 3.0}),
    chain_case("tanh", 100, 1, deadline=20.0, targets={"diffkit": 10.0}),
    units_case(100, 1, deadline=10.0, slope=True),
    units_case(200, 1, deadline=10.0, slope=True),
    units_case(300, 1, deadline=10.0, targets={"diffkit": 5.0}),
    units_case(400, 1, deadline=15.0, slope=True),
    units_case(80, 2, deadline=20.0, targets={"diffkit": 10.0}),
)


def _slope_bound(result, slope_cases, rows):
    """(holds, detail) when fewer than two sizes were timed: a timed size and a larger one
    stopped at its deadline bound the log-log slope from below."""
    timed = [(c, rows[("diffkit", c)]) for c in slope_cases
             if rows.get(("diffkit", c), {}).get("median_s")]
    stopped = [(c, rows[("diffkit", c)]) for c in slope_cases
               if rows.get(("diffkit", c), {}).get("status", "").startswith("no verdict")]
    if not (timed and stopped):
        return None, "not measured"
    (small, fast), (large, slow) = timed[-1], stopped[0]
    ratio = result["cases"][large]["variables"] / result["cases"][small]["variables"]
    if ratio <= 1:
        return None, "not measured"
    bound = math.log(slow["deadline_s"] / fast["median_s"]) / math.log(ratio)
    detail = (f"log-log slope >= {bound:.2f}: {small} in {format_seconds(fast['median_s'])}, "
              f"{large} not within {slow['deadline_s']:g} s")
    return (False if bound > SLOPE_LIMIT else None), detail


def targets(timing) -> list:
    """Every case's time limits, whether or not the case ran: a time holds only for a correct
    verdict; a wrong one or none within the deadline fails; then the linear-cost fit."""
    result = timing[NAME]
    out = []
    rows = {(r["engine"], r["size"]): r for r in result["rows"]}
    for case, info in result["cases"].items():
        for engine, limit in info["targets"].items():
            text = f"{case}: {ENGINE_TEXT.get(engine, engine)} <= {limit:g} s"
            row = rows.get((engine, case))
            if row is None:
                holds, detail = None, "not run (not a --quick case)"
            elif row.get("median_s") is not None:
                holds = row["median_s"] <= limit
                calls = f"{row['repeats']} call" + ("s" if row["repeats"] > 1 else "")
                detail = (f"{format_seconds(row['median_s'])}, verdict agree ({calls}, slowest "
                          f"{format_seconds(row['max_s'])})")
            else:
                failed = row["status"].startswith(("not counted", "no verdict", "failed"))
                holds, detail = (False if failed else None), row["status"]
            out.append(Target(NAME, text, holds, detail))
    slope_cases = [case for case, info in result["cases"].items() if info["slope"]]
    if slope_cases:
        fit = result.get("growth", {}).get("diffkit")
        if fit is not None:
            holds = fit["loglog_slope"] <= SLOPE_LIMIT
            detail = f"log-log slope {fit['loglog_slope']:.2f} ({fit['fit']})"
        else:
            holds, detail = _slope_bound(result, slope_cases, rows)
        out.append(Target(NAME, f"dk.compare at order 1 close to linear in the variables "
                                f"(log-log slope <= {SLOPE_LIMIT:g} over "
                                f"{', '.join(slope_cases)})", holds, detail))
    return out


WORKLOAD = Workload(
    NAME, "time to a verdict: every method and the symbolic reference, agree checked",
    BUILDERS,
    sizes=CASES,
    quick_sizes=(CASES[0], CASES[2]),
    size_label="case",
    targets=targets,
    summary=case_lines,
    measure=time_verdicts,
    notes=(
        "W6 times one call to a verdict: dk.compare in this process (diffkit imported, one small "
        "compare run before, SymPy's cache cleared before every call so that no call reuses "
        "another's derivatives) and `diffkit verify ... --json` as a new process (interpreter "
        "start-up and imports included). A time counts only when the verdict is agree, and for "
        "diffkit only when the symbolic reference took part. A call is stopped at its deadline "
        "(quick: at most 5 s); torch gradcheck runs gradgradcheck too at order 2.",
    ),
)
