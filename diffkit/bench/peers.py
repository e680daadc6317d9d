"""The engines the benchmark compares: diffkit, hand-written floats/NumPy (the floor), the
article's algorithm, SymPy, and the optional peers, each imported lazily (missing: skipped)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from diffkit.errors import InputError

NOT_INSTALLED = "not installed"


@dataclass(frozen=True)
class Peer:
    """One engine: `modules` are imported by `load()`; `distribution` names its version;
    `command`, when set, is a program the engine runs (found beside Python, else on PATH)."""

    name: str
    description: str
    modules: tuple = ()
    distribution: str | None = None
    command: str | None = None

    def available(self) -> bool:
        """True when every module this engine needs can be imported (nothing is imported) and
        its command, if any, is found."""
        if self.command is not None and find_command(self.command) is None:
            return False
        return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in self.modules)

    def version(self) -> str:
        """The installed version, or "not installed"."""
        if not self.available():
            return NOT_INSTALLED
        if self.distribution is None:
            return "-"
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    def load(self) -> SimpleNamespace:
        """Import the engine's modules; return them as attributes named by their last part."""
        loaded = {m.rsplit(".", 1)[-1]: importlib.import_module(m) for m in self.modules}
        if "jax" in loaded:
            # float64 everywhere, as every other engine here computes in float64
            loaded["jax"].config.update("jax_enable_x64", True)
        if self.command is not None:
            loaded["command"] = find_command(self.command)
        return SimpleNamespace(**loaded)


def find_command(name):
    """The path of program `name`: beside this Python (a virtual environment need not be on
    PATH), else on PATH; None when neither has it."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


PEERS = [
    Peer("diffkit", "this engine", ("diffkit",), "diffkit"),
    Peer("diffkit-compile", "diffkit.compile: traced once into straight-line Python (compile"
         " time excluded)", ("diffkit",), "diffkit"),
    Peer("hand", "hand-written Python floats / NumPy: the floor", ("numpy",), "numpy"),
    Peer("article", "the article's algorithm (diffkit/bench/article.py)",
         ("diffkit.bench.article",)),
    Peer("sympy", "SymPy: symbolic derivative, then evaluation", ("sympy",), "sympy"),
    Peer("micrograd", "micrograd (scalar Values)", ("micrograd.engine",), "micrograd"),
    Peer("autograd", "HIPS autograd", ("autograd", "autograd.numpy"), "autograd"),
    Peer("torch", "PyTorch eager, CPU, float64", ("torch",), "torch"),
    Peer("jax", "JAX eager (no jit), CPU, float64", ("jax", "jax.numpy", "jax.nn"), "jax"),
    Peer("jax-jit", "JAX jit, CPU, float64 (compile time excluded)",
         ("jax", "jax.numpy", "jax.nn"), "jax"),
    Peer("mygrad", "MyGrad", ("mygrad",), "mygrad"),
    Peer("diffkit-cli", "`diffkit verify` run as a new process (start-up included)",
         ("diffkit",), "diffkit", command="diffkit"),
    Peer("torch-gradcheck", "torch.autograd.gradcheck (+ gradgradcheck at order 2), float64",
         ("torch",), "torch"),
]

BY_NAME = {p.name: p for p in PEERS}


def select(names=None) -> list:
    """The peers named (comma-separated string or list; None: all), diffkit always first.
    Raises InputError for an unknown name or a string that names none."""
    if names is None:
        return list(PEERS)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
        if not names:
            raise InputError(f"--peers names no peer; choose from {', '.join(BY_NAME)}")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise InputError(f"unknown peer {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    return [BY_NAME["diffkit"]] + [BY_NAME[n] for n in names if n != "diffkit"]
