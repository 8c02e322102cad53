"""Imports point one way (aggregator → storage), and I/O stays in the few modules that own it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PURE = ["aggregator/feeds", "aggregator/schedule", "aggregator/extract", "aggregator/config",
        "aggregator/fetch/urlcheck.py", "storage/records.py", "storage/identity.py"]
HTTP_OWNERS = {"aggregator/fetch/http.py", "aggregator/fetch/httppool.py",
               "aggregator/fetch/netguard.py"}


def modules(*roots: str) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        path = ROOT / root
        if path.is_dir():
            found.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            found.append(path)
    return found


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", modules("storage"), ids=lambda p: str(p.relative_to(ROOT)))
def test_storage_never_imports_aggregator(path: Path) -> None:
    assert "aggregator" not in imported(path)


@pytest.mark.parametrize("path", modules(*PURE), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_do_no_io(path: Path) -> None:
    assert not imported(path) & {"httpx", "httpcore", "sqlalchemy", "psycopg", "socket"}


@pytest.mark.parametrize("path", modules("aggregator", "storage"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_http_client_imports_httpx(path: Path) -> None:
    if str(path.relative_to(ROOT)) not in HTTP_OWNERS:
        assert not imported(path) & {"httpx", "httpcore", "h11"}


def test_records_are_stdlib_only() -> None:
    allowed = {"__future__", "dataclasses", "datetime"}
    assert imported(ROOT / "storage" / "records.py") <= allowed


def test_the_service_loads_the_article_extractor_only_when_it_extracts() -> None:
    """trafilatura and htmldate cost about 20 MiB per process; feeds alone never need them."""
    probe = ("import sys, aggregator.runtime.service, aggregator.cli; "
             "print(sorted(m for m in ('trafilatura', 'htmldate') if m in sys.modules))")
    before = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert before.stdout.strip() == "[]"
    probe = ("import sys; from aggregator.extract import extract; "
             "print('trafilatura' in sys.modules)")
    after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, cwd=ROOT)
    assert after.stdout.strip() == "True"
