"""How many examples each fuzz (property) test runs.

CI runs a few thousand per parser; a release check runs far more, e.g.
``HAMBASTEGI_FUZZ_EXAMPLES=200000 .venv/bin/python -m pytest -q tests/test_signature_parsers.py
tests/test_inbox_fuzz.py tests/test_hardening.py tests/test_event_input.py`` (README).
"""

from __future__ import annotations

import os


def examples(default: int) -> int:
    """``default`` in CI; the environment's count when it asks for more."""
    return max(default, int(os.environ.get("HAMBASTEGI_FUZZ_EXAMPLES", "0")))
