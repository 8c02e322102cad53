"""Leases of a dead holder are free at once (issue 10, item 6), on both databases.

A holder is a real process here: a child that sleeps, whose owner string names its pid and
start time. While it lives, its feeds and article pages are held; once it is killed (a zombie
first, then reaped) the next claim takes them without waiting for the lease to expire. A pid
reused by another process, an owner of another shape and another host's holder (without the
PostgreSQL lock that would vouch for it) are judged as the docstring of ``storage.holders`` says.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from storage import holders
from storage.records import ArticleResult, FeedConfig
from storage.store import Store
from storage.tables import article_leases
from tests.dbfixtures import T0, entry, poll

URLS = [f"https://site{i}.example/feed" for i in range(5)]
LEASE = 300.0


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that a test may kill: the stand-in for a crashed holder."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def owner_of(pid: int) -> str:
    """The owner string the process ``pid`` would have made for itself."""
    me = holders.parse(holders.new_owner())
    assert me is not None, "this test needs /proc"
    start = holders.start_time(pid)
    assert start is not None
    return replace(me, pid=pid, start=start).owner


def test_owner_names_this_process_and_reads_back() -> None:
    holder = holders.parse(holders.new_owner())
    assert holder is not None
    assert (holder.host, holder.pid) == (socket.gethostname(), os.getpid())
    assert holders.local_verdict(holder) is True
    assert holders.describe(holder.owner) == f"{socket.gethostname()} pid {os.getpid()}"
    assert holders.parse("w1") is None and holders.describe("w1") == "w1"


def test_a_killed_holders_feeds_are_claimable_at_once(
    store: Store, child: subprocess.Popen[bytes]
) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS], T0)
    dead = owner_of(child.pid)
    assert len(store.claim_due(T0, 3, dead, LEASE)) == 3
    assert [(h.owner, h.feeds, h.alive) for h in store.held_leases(T0, "b")] == [(dead, 3, True)]
    assert {f.url for f in store.claim_due(T0, 10, "b", LEASE)} == set(URLS[3:])
    assert store.claim_due(T0, 10, "c", LEASE) == []  # held by a live process: not taken

    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert holders.local_verdict(holders.parse(dead)) is False  # type: ignore[arg-type]
    taken = store.claim_due(T0 + timedelta(seconds=1), 10, "c", LEASE)
    assert {f.url for f in taken} == set(URLS[:3])  # five minutes early
    assert [(h.owner, h.feeds) for h in store.held_leases(T0, "nobody")] == [("b", 2), ("c", 3)]


def test_a_reused_pid_is_not_the_holder(store: Store) -> None:
    store.sync_feeds([FeedConfig(u) for u in URLS[:2]], T0)
    me = holders.parse(owner_of(os.getpid()))
    assert me is not None
    impostor = replace(me, start=me.start - 1).owner  # our pid, another process's start time
    store.claim_due(T0, 1, me.owner, LEASE)
    store.claim_due(T0, 1, impostor, LEASE)
    assert [f.url for f in store.claim_due(T0, 10, "b", LEASE)] == [URLS[1]]
    assert [(h.owner, h.alive) for h in store.held_leases(T0, "b")] == [(me.owner, True)]


def test_holders_it_cannot_judge_keep_their_lease_until_it_expires(store: Store) -> None:
    """An owner of another shape, or another host's holder on SQLite, is never freed early."""
    store.sync_feeds([FeedConfig(u) for u in URLS[:2]], T0)
    me = holders.parse(holders.new_owner())
    assert me is not None
    elsewhere = replace(me, host="elsewhere.invalid", pid=1).owner
    store.claim_due(T0, 1, "old-style-owner", LEASE)
    store.claim_due(T0, 1, elsewhere, LEASE)
    if store.db.engine.dialect.name == "postgresql":  # no lock vouches for it: dead
        assert len(store.claim_due(T0, 10, "b", LEASE)) == 1
    else:
        assert store.claim_due(T0, 10, "b", LEASE) == []
        assert {(h.owner, h.alive) for h in store.held_leases(T0, "b")} == {
            ("old-style-owner", False), (elsewhere, False)}  # fmt: skip
    assert len(store.claim_due(T0 + timedelta(seconds=LEASE), 10, "b", LEASE)) >= 1


@pytest.mark.postgres
def test_postgres_lock_vouches_for_a_holder_on_another_host(store_url_factory: object) -> None:
    url = store_url_factory("postgres")  # type: ignore[operator]
    me = holders.parse(holders.new_owner())
    assert me is not None
    remote = replace(me, host="elsewhere.invalid", pid=1).owner
    with Store.open(url) as store, Store.open(url) as other:
        store.sync_feeds([FeedConfig(u) for u in URLS], T0)
        other.hold(remote)
        assert len(other.claim_due(T0, 2, remote, LEASE)) == 2
        assert len(store.claim_due(T0, 10, "b", LEASE)) == 3
        [held] = store.held_leases(T0, "b")
        assert (held.owner, held.feeds, held.alive) == (remote, 2, True)
        assert held.until == T0 + timedelta(seconds=LEASE)
        other.close()  # its connection, and with it the lock, is gone: as if the host died
        assert len(store.claim_due(T0, 10, "c", LEASE)) == 2
        assert [(h.owner, h.alive) for h in store.held_leases(T0, "c")] == [("b", False)]


def test_a_killed_holders_article_pages_are_claimable_at_once(
    store: Store, child: subprocess.Popen[bytes]
) -> None:
    store.sync_feeds([FeedConfig(URLS[0], fetch_articles=True)], T0)
    poll(store, URLS[0], T0, [entry(n) for n in range(4)])
    dead = owner_of(child.pid)
    claimed = store.claim_articles(T0, 3, dead, LEASE)
    assert len(claimed) == 3
    assert len(store.claim_articles(T0, 10, "b", LEASE)) == 1
    assert store.claim_articles(T0, 10, "c", LEASE) == []
    child.kill()
    child.wait()
    again = store.claim_articles(T0 + timedelta(seconds=1), 10, "c", LEASE)
    assert sorted(a.item_id for a in again) == sorted(a.item_id for a in claimed)
    store.apply_article(again[0].item_id, ArticleResult(error="extract: test"), T0)
    with store.db.read() as conn:
        left = dict(conn.execute(select(article_leases.c.item_id, article_leases.c.owner)).all())
    assert again[0].item_id not in left and set(left.values()) == {"b", "c"}


def test_released_article_pages_are_due_again(store: Store) -> None:
    """A helper of ``poll --once`` that died held pages under the main process's owner."""
    store.sync_feeds([FeedConfig(URLS[0], fetch_articles=True)], T0)
    poll(store, URLS[0], T0, [entry(n) for n in range(2)])
    claimed = store.claim_articles(T0, 10, "main", LEASE)
    assert store.release_articles([a.item_id for a in claimed], "other", T0) == 0
    assert store.claim_articles(T0, 10, "b", LEASE) == []
    assert store.release_articles([a.item_id for a in claimed], "main", T0) == 2
    assert len(store.claim_articles(T0, 10, "b", LEASE)) == 2
