"""Markdown tables of the studies' numbers (via tabulate), with one deterministic way of
writing a number so that the same results always give the same bytes."""

from __future__ import annotations

import math

from tabulate import tabulate


def number(value, digits: int = 4) -> str:
    """Return value as text: `digits` significant digits, `n/a` for None, yes/no for booleans.

    Example:
        >>> number(0.000123456), number(2), number(None), number(True)
        ('0.0001235', '2', 'n/a', 'yes')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def markdown_table(headers, rows, digits: int = 4) -> str:
    """Return a GitHub-flavoured Markdown table; numbers are written with `number`.

    Example:
        >>> print(markdown_table(["n", "paths"], [[1, 1], [2, 2.0]]))
        | n   | paths   |
        |-----|---------|
        | 1   | 1       |
        | 2   | 2       |
    """
    text = [[cell if isinstance(cell, str) else number(cell, digits) for cell in row]
            for row in rows]
    return tabulate(text, headers=list(headers), tablefmt="github", disable_numparse=True)


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
