"""Imports point one way (aggregator → storage, down the flow), I/O stays in the few modules that
own it, and no import cycle anywhere (issue 12)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.importgraph import build, find_cycle, reachable

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


GRAPH = build(ROOT, ["aggregator", "storage"])
OURS = sorted(GRAPH)
# The flow's packages; a pure one reads values and returns values, so it can load no I/O package.
PURE_PACKAGES = ["aggregator.feeds", "aggregator.schedule", "aggregator.extract"]
IO_PACKAGES = ("aggregator.fetch", "aggregator.runtime", "aggregator.cli", "aggregator.web",
               "storage.store", "storage.engine")
IO_LIBRARIES = {"sqlalchemy", "httpx", "httpcore", "h11", "psycopg", "socket"}
# What fetch may load of ours beside itself: the error tree (its root lives in storage).
FETCH_FLOOR = {"aggregator", "aggregator.errors", "storage", "storage.errors"}


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_graph_sees_the_packages_of_the_flow() -> None:
    """A graph that lost its modules would pass every rule below."""
    for package in [*PURE_PACKAGES, "aggregator.fetch", "aggregator.runtime", "aggregator.cli",
                    "aggregator.config", "aggregator.web", "storage.store"]:
        assert package in GRAPH
    assert "aggregator.fetch.http" in reachable(GRAPH, "aggregator.runtime.pipeline")


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_load_no_io(package: str) -> None:
    """Everything a pure package loads, also through storage, does no I/O."""
    loaded = set()
    for name in (m for m in OURS if within(m, package)):
        loaded |= reachable(GRAPH, name)
    assert sorted(m for m in loaded if within(m, *IO_PACKAGES) or m in IO_LIBRARIES) == []


def test_fetch_loads_nothing_of_the_other_stages() -> None:
    """The HTTP code knows no feeds, schedules, extraction, runtime or archive."""
    loaded = set()
    for name in (m for m in OURS if within(m, "aggregator.fetch")):
        loaded |= reachable(GRAPH, name)
    ours = {m for m in loaded if within(m, "aggregator", "storage")}
    assert sorted(ours - FETCH_FLOOR - {m for m in ours if within(m, "aggregator.fetch")}) == []


@pytest.mark.parametrize("name", [m for m in OURS if within(m, "aggregator")])
def test_only_runtime_and_cli_import_the_store(name: str) -> None:
    """The web view (issue 16) is an edge like the CLI: it reads the archive through the store."""
    if not within(name, "aggregator.runtime", "aggregator.cli", "aggregator.web"):
        assert not GRAPH[name] & {"storage.store", "storage.engine"}


def test_the_runtime_is_handed_a_store_through_the_seam() -> None:
    """The runtime types against ``storage.seam.StorageType`` and never names the concrete store:
    the CLI opens it, a helper process through ``open_store`` (issue 12)."""
    runtime = [m for m in OURS if within(m, "aggregator.runtime")]
    assert sorted(m for m in runtime if GRAPH[m] & {"storage.store", "storage.engine"}) == []
    assert sorted(m for m in runtime if "storage.seam" in GRAPH[m]) == [
        "aggregator.runtime.daemon", "aggregator.runtime.dealing", "aggregator.runtime.monitor",
        "aggregator.runtime.oneshot", "aggregator.runtime.pipeline", "aggregator.runtime.processes",
        "aggregator.runtime.worker", "aggregator.runtime.writer"]


@pytest.mark.parametrize("name", [m for m in OURS if not within(m, "aggregator.web")])
def test_nothing_imports_the_web_view_but_the_edges(name: str) -> None:
    """Only the CLI and the runtime may start the web view; nothing of the flow depends on it."""
    if not within(name, "aggregator.cli", "aggregator.runtime"):
        assert not {m for m in GRAPH[name] if within(m, "aggregator.web")}


def test_the_command_line_loads_no_web_framework_until_it_serves() -> None:
    """starlette, jinja2 and uvicorn load for ``serve`` only (start-up stays fast, issue 13)."""
    probe = ("import sys, aggregator.cli, aggregator.web; "
             "print(sorted(m for m in ('starlette', 'jinja2', 'uvicorn', 'warcio') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "x": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_follows_relative_lazy_and_package_imports(tmp_path: Path) -> None:
    """``from . import``, an import inside a function, a package's ``__init__`` entered from
    outside it count; an import under ``if TYPE_CHECKING:`` does not."""
    (tmp_path / "p" / "sub").mkdir(parents=True)
    (tmp_path / "p" / "__init__.py").write_text("")
    (tmp_path / "p" / "sub" / "__init__.py").write_text("from p.sub import b\n")
    (tmp_path / "p" / "sub" / "b.py").write_text("from . import c\n")
    (tmp_path / "p" / "sub" / "c.py").write_text("import json\n")
    (tmp_path / "p" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.z\n"
        "def f():\n    from p.sub.c import x\n")
    (tmp_path / "p" / "z.py").write_text("import p.a\n")
    graph = build(tmp_path, ["p"])
    assert graph["p.a"] == {"p.sub.c", "p.sub", "typing"}
    assert graph["p.sub.b"] == {"p.sub.c"}
    assert graph["p.sub"] == {"p.sub.b"}
    assert find_cycle(graph) is None


@pytest.mark.parametrize("package", ["aggregator.fetch", "aggregator.feeds", "aggregator.schedule",
                                     "aggregator.extract", "aggregator.runtime", "aggregator.cli",
                                     "aggregator.config", "aggregator.web"])
def test_each_package_says_its_role_and_its_api(package: str) -> None:
    """A newcomer reads the tree: each package's first line says what it is for."""
    module = __import__(package, fromlist=["__all__"])
    assert module.__doc__ and len(module.__doc__.splitlines()[0]) > 20
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_records_are_stdlib_only() -> None:
    allowed = {"__future__", "dataclasses", "datetime"}
    assert imported(ROOT / "storage" / "records.py") <= allowed


def test_the_service_loads_the_article_extractor_only_when_it_extracts() -> None:
    """trafilatura and htmldate cost about 20 MiB per process; feeds alone never need them."""
    probe = ("import sys, aggregator.runtime.daemon, aggregator.runtime.oneshot, aggregator.cli; "
             "print(sorted(m for m in ('trafilatura', 'htmldate') if m in sys.modules))")
    before = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert before.stdout.strip() == "[]"
    probe = ("import sys; from aggregator.extract import extract; "
             "print('trafilatura' in sys.modules)")
    after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, cwd=ROOT)
    assert after.stdout.strip() == "True"


def test_the_command_line_loads_no_http_client_until_a_command_fetches() -> None:
    """``--help`` and ``check-config`` need ``url_problem`` only; httpx and the client load when
    a command fetches (``aggregator.fetch`` exports them lazily)."""
    probe = ("import sys, aggregator.cli, aggregator.config; "
             "print(sorted(m for m in ('httpx', 'httpcore', 'h11') if m in sys.modules))")
    before = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert before.stdout.strip() == "[]"
    probe = ("import sys; from aggregator.fetch import HttpClient; "
             "print(sorted(m for m in ('httpx', 'httpcore') if m in sys.modules))")
    after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True, cwd=ROOT)
    assert after.stdout.strip() == "['httpcore']"


def test_httpx_loads_with_the_first_url_not_in_canonical_form() -> None:
    """The client speaks through httpcore and its own pool: httpx parses only the URLs the
    canonical split cannot take (an IDN host here), and loads then (issue 14)."""
    probe = ("import sys; from aggregator.fetch.http import _checked; "
             "_checked('http://example.org/feed', 'x'); print('httpx' in sys.modules); "
             "print(_checked('http://bücher.example/feed', 'x').text); "
             "print('httpx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "http://xn--bcher-kva.example/feed", "True"]


def test_the_one_shot_poll_loads_the_feed_parser_only_when_it_parses() -> None:
    """A pass of 304s parses nothing: lxml and feedparser load with the first body, protego
    with the first robots.txt, and multiprocessing only for helper processes or parse workers
    (issue 14)."""
    probe = ("import sys, aggregator.cli, aggregator.runtime.oneshot; "
             "print(sorted(m for m in ('lxml', 'feedparser', 'aggregator.feeds.parse', "
             "'multiprocessing', 'protego') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"
