"""Where the shared corpora live (``../shared/corpus/`` beside the checkout), and what a test
does when they are missing: skip with a reason on a developer's clone, fail in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(
    os.environ.get("AGGREGATOR_CORPUS")
    or Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
)
NOT_DOCUMENTS = frozenset({"LICENSE", "SOURCE", "README.md"})


def documents(name: str) -> list[Path]:
    """The corpus's documents, sorted; empty when it is absent (see :func:`require`)."""
    folder = CORPUS / name
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name not in NOT_DOCUMENTS)


def require(name: str) -> Path:
    """The corpus folder; a skip with the reason when absent, a failure in CI (``CI`` set, or
    ``AGGREGATOR_REQUIRE_PG=1`` as ``.ci/run`` sets it)."""
    folder = CORPUS / name
    if not folder.is_dir():
        reason = f"corpus {folder} is absent (it sits beside the checkout, not in it)"
        if os.environ.get("CI") or os.environ.get("AGGREGATOR_REQUIRE_PG") == "1":
            pytest.fail(f"{reason}; CI must provide it")
        pytest.skip(reason)
    return folder
