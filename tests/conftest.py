"""Test-suite settings: hypothesis runs derandomized, so every run draws the same examples
(tests stay deterministic; a failure found once is found again)."""

from hypothesis import settings

settings.register_profile("diffkit", derandomize=True, database=None, print_blob=True)
settings.load_profile("diffkit")
