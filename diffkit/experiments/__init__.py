"""The article's experiments: the catalog of cases and the studies, each a pure function of its
parameters returning JSON-ready numbers.

A study is a module of this package that defines `ORDER` (its place in the report) and
`run(quick=False, seeds=None, progress=None, **params) -> dict`; its page is the module of the
same name in `diffkit.report.studies`. `STUDIES` is derived from the modules, never listed.
"""

from __future__ import annotations

import importlib
import pkgutil


def studies() -> tuple:
    """Return the names of the study modules of this package, sorted by their ORDER.

    Example:
        >>> studies()[:3]
        ('agreement', 'vanishing', 'xor')
    """
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "ORDER"):
            found.append((module.ORDER, info.name))
    return tuple(name for _, name in sorted(found))


def __getattr__(name: str):
    # STUDIES is derived on each access (a directory listing; modules import once), so a study
    # module added to the package, or to its __path__, is picked up without a list to edit.
    if name == "STUDIES":
        return studies()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_study(name: str, **params) -> dict:
    """Run the study `name` (its module's `run`) and return its numbers as plain dicts.

    Example:
        >>> run_study("xor", seeds=1, epochs=3, workers=1)["runs"][0]["epochs"]
        3
    """
    from diffkit.errors import InputError

    names = studies()
    if name not in names:
        raise InputError(f"unknown study {name!r}; use one of {', '.join(names)}")
    return importlib.import_module(f"diffkit.experiments.{name}").run(**params)
