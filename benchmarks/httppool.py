"""Our HTTP client at the shipped settings, this tree against another commit's, as whole processes.

Issue 12 asks whether the hand-written pool and transport (``aggregator/fetch/httppool.py`` on h11,
the asyncio transport once in ``netguard.py``) pay for themselves against httpcore's connections and
backend. This compares the HttpClient of this checkout with the one of ``--against`` (a commit,
extracted with ``git archive``: by default 05f9f7c, the httpcore version issue 12 declined), each
run as its own process: its wall time, CPU seconds (``os.wait4``: user + system, all threads,
imports included) and peak RSS, and per pass its wall time, CPU seconds and requests per second.

What runs is what the service does with its defaults (``Settings()``): one process,
``service.concurrency`` polls at once (16), each holding a ``HostLimiter`` slot
(``per_host_concurrency`` 2, ``per_host_delay`` 1 s) around one ``HttpClient.get``, the SSRF guard
on (loopback allowed through ``allowed_networks``, so every address is still vetted). The feeds
come from :mod:`benchmarks.feedserver` in its own process: 20 gzip RSS entries, 20 ms per
response, one feed per host on 127.42.x.y by default. Three passes per process:

- ``200 new``: the first poll, every connection new;
- ``304 kept``: every feed again at once with its validators, over the connections kept alive;
- ``304 new``: a new client, so new connections: what a poll meets 15 minutes later, when every
  keep-alive (15 s) has lapsed; with one feed per host this is every poll of a running service.

Trees alternate (ABBA...) so that a change in the machine's load hits both::

    python -m benchmarks.httppool                       # 1,000 feeds on 1,000 hosts, then 100
    python -m benchmarks.httppool --hosts 10 --repeat 5 --against HEAD~3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python benchmarks/httppool.py`
    sys.path.insert(0, str(ROOT))

BASELINE = "05f9f7c"  # the client on httpcore's connections and anyio backend (issue 12)
PASSES = ("200 new", "304 kept", "304 new")


# ---------------------------------------------------------------- the measured process


async def poll(
    urls: list[str], client: Any, settings: Any, validators: dict[str, Any], conditional: bool
) -> Counter[str]:
    """One pass as the service polls: ``concurrency`` tasks, a host slot around each GET."""
    from aggregator.fetch.politeness import HostLimiter

    http = settings.http
    limiter = HostLimiter(http.per_host_concurrency, http.per_host_delay)
    outcomes: Counter[str] = Counter()
    queue = iter(urls)

    async def worker() -> None:
        for url in queue:
            etag, modified = validators[url] if conditional else (None, None)
            try:
                async with limiter.slot(url):
                    response = await client.get(url, etag=etag, last_modified=modified)
            except Exception as exc:  # counted and shown: a benchmark goes on
                outcomes[f"error {type(exc).__name__}"] += 1
                continue
            outcomes[str(response.status)] += 1
            validators[url] = (response.header("etag"), response.header("last-modified"))

    await asyncio.gather(*(worker() for _ in range(settings.service.concurrency)))
    return outcomes


async def child(urls: list[str]) -> dict[str, Any]:
    """Every pass in this process; the client is whichever tree is first on PYTHONPATH."""
    from aggregator.config.settings import Settings
    from aggregator.fetch.http import HttpClient

    settings = Settings.model_validate({"http": {"allowed_networks": ["127.0.0.0/8"]}})
    validators: dict[str, Any] = {}
    passes: dict[str, Any] = {}
    client = HttpClient(settings.http)
    backend = getattr(getattr(client, "_backend", None), "_inner", None)
    for name in PASSES:
        if name == "304 new":
            await client.aclose()
            client = HttpClient(settings.http)
        cpu, wall = time.process_time(), time.perf_counter()
        outcomes = await poll(urls, client, settings, validators, name != "200 new")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        passes[name] = {"wall": wall, "cpu": cpu, "rps": len(urls) / wall, "outcomes": outcomes}
    await client.aclose()
    return {"passes": passes, "backend": type(backend).__name__, "module": sys.modules[
        HttpClient.__module__].__file__}


# ---------------------------------------------------------------- the parent


def extract(rev: str, into: Path) -> Path:
    """``aggregator/`` as it was at ``rev``, from this checkout's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "aggregator"],
                             check=True, capture_output=True).stdout
    tree = into / rev.replace("/", "_")
    tree.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def run(tree: Path, urls_file: Path) -> dict[str, Any]:
    """One measured process; its own figures plus wall, CPU and peak RSS as a whole."""
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
    argv = [sys.executable, "-m", "benchmarks.httppool", "--child", str(urls_file)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, cwd=tree)  # -m puts cwd first
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"httppool: the measured process for {tree} exited {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    if not Path(result["module"]).is_relative_to(tree):
        raise SystemExit(f"httppool: measured {result['module']}, not the client in {tree}")
    result["process"] = {"wall": time.perf_counter() - started,
                         "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}
    return result


def table(label: str, runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Medians over the repeats (min-max of CPU beside), one row per tree and pass."""
    lines = [label, f"  {'tree':<26} {'pass':<9} {'wall s':>7} {'CPU s':>6} {'CPU range':>11} "
                    f"{'ms/req':>6} {'req/s':>6}  outcomes"]
    for name, results in runs.items():
        for p in PASSES:
            figures = [r["passes"][p] for r in results]
            cpu = [f["cpu"] for f in figures]
            outcomes: Counter[str] = Counter()
            for f in figures:
                outcomes.update(f["outcomes"])
            per_request = 1000 * statistics.median(cpu) / sum(figures[0]["outcomes"].values())
            lines.append(
                f"  {name:<26} {p:<9} {statistics.median(f['wall'] for f in figures):>7.2f} "
                f"{statistics.median(cpu):>6.2f} {min(cpu):>5.2f}-{max(cpu):<5.2f} "
                f"{per_request:>6.2f} {statistics.median(f['rps'] for f in figures):>6.0f}  "
                f"{dict(outcomes)}")
        whole = [r["process"] for r in results]
        lines.append(
            f"  {name:<26} {'process':<9} {statistics.median(w['wall'] for w in whole):>7.2f} "
            f"{statistics.median(w['cpu'] for w in whole):>6.2f} "
            f"{min(w['cpu'] for w in whole):>5.2f}-{max(w['cpu'] for w in whole):<5.2f} "
            f"{'':>6} {'':>6}  peak RSS {statistics.median(w['rss'] for w in whole):.0f} MiB")
    return lines


def compare(
    feeds: int, hosts: int, latency: float, trees: dict[str, Path], repeat: int
) -> list[str]:
    from benchmarks.feedserver import FeedServer

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with FeedServer(feeds=feeds, entries=20, latency=latency, hosts=hosts) as server, \
            tempfile.TemporaryDirectory() as tmp:
        urls_file = Path(tmp) / "urls.json"
        urls_file.write_text(json.dumps(server.urls))
        order = list(trees)
        for n in range(repeat):
            for name in order if n % 2 == 0 else reversed(order):
                runs[name].append(run(trees[name], urls_file))
    names = {name: f"{name} ({runs[name][0]['backend']})" for name in runs}
    return table(f"{feeds} feeds on {hosts} hosts, {latency * 1000:g} ms per response, "
                 f"{repeat} processes per tree",
                 {names[k]: v for k, v in runs.items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--hosts", default="1000,100", help="host counts, one table each")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per response")
    parser.add_argument("--repeat", type=int, default=3, help="processes per tree and host count")
    parser.add_argument("--against", default=BASELINE, help="a commit ('' for this tree only)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(asyncio.run(child(json.loads(args.child.read_text())))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.against:
            trees[args.against] = extract(args.against, Path(tmp))
        for hosts in (int(h) for h in args.hosts.split(",")):
            lines = compare(args.feeds, hosts, args.latency, trees, args.repeat)
            print("\n".join(lines), flush=True)
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
