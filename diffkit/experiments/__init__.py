"""The article's experiments: the catalog of cases and the studies (agreement, vanishing, xor,
swell, accuracy), each a pure function of its parameters returning JSON-ready numbers."""

from __future__ import annotations

import importlib

STUDIES = ("agreement", "vanishing", "xor", "swell", "accuracy")


def run_study(name: str, **params) -> dict:
    """Run the study `name` (its module's `run`) and return its numbers as plain dicts.

    Example:
        >>> run_study("xor", seeds=1, epochs=3, workers=1)["runs"][0]["epochs"]
        3
    """
    from diffkit.errors import InputError

    if name not in STUDIES:
        raise InputError(f"unknown study {name!r}; use one of {', '.join(STUDIES)}")
    return importlib.import_module(f"diffkit.experiments.{name}").run(**params)
