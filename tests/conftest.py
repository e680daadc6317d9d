"""Test-suite settings: hypothesis runs derandomized, so every run draws the same examples
(tests stay deterministic; a failure found once is found again); built-in rules are replaced
through the `replace_rule` fixture, and a test that leaves one replaced fails."""

import contextlib

import pytest
from hypothesis import settings

import diffkit as dk
from diffkit import ops
from diffkit.core import set_rules

settings.register_profile("diffkit", derandomize=True, database=None, print_blob=True)
settings.load_profile("diffkit")


@pytest.fixture
def replace_rule():
    """Return replace(prim, mode, k, rule): prim's `mode` ("vjp" or "jvp") rule for input k
    is `rule` for the rest of this test; the old rules come back at teardown, even when the
    test fails."""
    with contextlib.ExitStack() as stack:

        def replace(prim, mode, k, rule):
            return stack.enter_context(dk.replaced_rule(prim, mode, k, rule))

        yield replace


def _rules():
    return {name: (p.vjp, p.jvp) for name, p in ops.PRIMITIVES.items()}


@pytest.fixture(autouse=True)
def built_in_rules_are_left_as_found():
    """A test that leaves a built-in rule replaced fails here, and the rule is put back: no test
    sees another's patch, whatever the order or the worker (pytest -n)."""
    before = _rules()
    yield
    leaked = sorted(name for name, rules in _rules().items() if rules != before[name])
    for name in leaked:
        prim = ops.PRIMITIVES[name]
        for mode, rules in zip(("vjp", "jvp"), before[name]):
            set_rules(prim, mode, rules)
    if leaked:
        pytest.fail(f"the test left built-in rules replaced: {', '.join(leaked)}; use the"
                    " replace_rule fixture", pytrace=False)
