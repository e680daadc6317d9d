"""Markdown tables of the studies' numbers (via tabulate), with one deterministic way of
writing a number (and a count of things) so that the same results always give the same bytes."""

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


def plural(n, noun: str) -> str:
    """Return "n noun", with the plural s unless n is 1.

    Example:
        >>> plural(1, "case"), plural(3, "random point")
        ('1 case', '3 random points')
    """
    return f"{n} {noun}" + ("" if n == 1 else "s")
