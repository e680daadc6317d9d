"""Doctest collection skips the adapters whose engine is not installed (they import it)."""

import importlib.util

collect_ignore = [f"{name}.py" for name in ("torch", "jax", "micrograd")
                  if importlib.util.find_spec(name) is None]
