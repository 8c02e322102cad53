"""Who holds a lease, and whether that holder still lives (a crash must not hide feeds).

A lease owner names its holder: host, boot, pid namespace, pid, the process's start time (from
``/proc/PID/stat``, so a pid the kernel handed to another process later is not taken for the
holder) and a random token. A claimer on the same host, boot and pid namespace reads ``/proc``:
a holder that is gone, a zombie, or another process under its pid is dead, and its leases are
free at once instead of when they expire. On PostgreSQL each holder also keeps a session advisory
lock for its life, on a connection of its own; the lock dies with the connection, so a holder on
another host is known dead when nobody holds its lock. Owners of any other shape (older
versions, tests) are judged by their lease's expiry alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

LOCK_CLASS = 7342002  # first key of every holder's advisory lock (7342001: migrations)
_LOCKED = text(
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid::bigint = :cls AND objid::bigint = ANY(CAST(:keys AS bigint[]))"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# try: a (31-bit) collision with a live holder must not block; that holder vouches for us too
_LOCK = text("SELECT pg_try_advisory_lock(:cls, :key)")


@dataclass(frozen=True, slots=True)
class Holder:
    """One process that may hold leases, as its owner string names it."""

    host: str
    pid: int
    start: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    boot: str
    pidns: str
    token: str

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}:{self.boot}:{self.pidns}:{self.token}"

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"


def parse(owner: str) -> Holder | None:
    """The holder an owner string names; None for owners of another shape."""
    parts = owner.split(":")
    if len(parts) != 6 or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    host, pid, start, boot, pidns, token = parts
    return Holder(host, int(pid), int(start), boot, pidns, token)


def describe(owner: str) -> str:
    """``host pid N`` for a holder's owner string; other owners as they are."""
    holder = parse(owner)
    return holder.describe() if holder is not None else owner


def new_owner() -> str:
    """An owner for this process (unique per call): its identity and a random token."""
    pid = os.getpid()
    start = start_time(pid)
    if start is None:  # no /proc (not Linux): only the lease's expiry can free it
        return f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex[:8]
    return Holder(socket.gethostname(), pid, start, _boot_id(), _pidns(), token).owner


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (ticks after boot); None if none runs (a zombie is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):  # dead, only waiting for its parent to reap it
        return None
    return int(fields[19])


@cache
def _boot_id() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii")
        return boot.strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


@cache
def _pidns() -> str:
    try:
        return str(Path("/proc/self/ns/pid").readlink()).removeprefix("pid:[").removesuffix("]")
    except OSError:
        return "nons"


def local_verdict(holder: Holder) -> bool | None:
    """Alive (True) or dead (False) as this machine can tell; None when it cannot."""
    if holder.host != socket.gethostname():
        return None
    if holder.boot != _boot_id():
        return False  # the machine restarted since: every process of that boot is gone
    if holder.pidns != _pidns():
        return None  # another container's pids mean nothing here
    return start_time(holder.pid) == holder.start


def lock_key(owner: str) -> int:
    """The second key of the owner's advisory lock (non-negative: pg_locks shows it as an oid)."""
    return int.from_bytes(hashlib.sha256(owner.encode()).digest()[:4], "big") & 0x7FFFFFFF


def dead(conn: Connection, owners: Iterable[str]) -> list[str]:
    """The owners among ``owners`` whose holder is known dead (unknown ones are not)."""
    return sorted(owner for owner, verdict in _judge(conn, owners).items() if verdict is False)


def alive(conn: Connection, owners: Iterable[str]) -> set[str]:
    """The owners among ``owners`` whose holder is known to run."""
    return {owner for owner, verdict in _judge(conn, owners).items() if verdict}


def _judge(conn: Connection, owners: Iterable[str]) -> dict[str, bool | None]:
    """Each owner's holder: alive, dead, or None (cannot tell: only its lease's expiry can)."""
    verdicts: dict[str, bool | None] = {}
    for owner in set(owners):
        holder = parse(owner)
        verdicts[owner] = None if holder is None else local_verdict(holder)
    unknown = [o for o, v in verdicts.items() if v is None and parse(o) is not None]
    if unknown and conn.dialect.name == "postgresql":
        keys = {lock_key(owner): owner for owner in unknown}
        locked = {int(k) for k in conn.execute(_LOCKED, {"cls": LOCK_CLASS, "keys": list(keys)})
                  .scalars()}  # fmt: skip
        verdicts.update({owner: key in locked for key, owner in keys.items()})
    return verdicts


@dataclass(frozen=True, slots=True)
class Holding:
    """Feeds another owner holds now, for ``poll --once`` to say why it skipped them."""

    owner: str
    feeds: int
    until: datetime  # the last of its leases ends then
    alive: bool  # known to run (False: cannot tell, the lease's expiry will free them)


class HolderLock:
    """A PostgreSQL session advisory lock naming ``owner`` as alive, held until ``close``.

    It lives on a connection of its own, outside the pool, so it dies with the process. If
    that connection breaks (a server restart), ``ensure`` takes the lock again on a new one;
    meanwhile others may take this holder's feeds, whose writes then fail as lost leases."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner
        self.conn: Connection | None = None
        self.ensure()

    def ensure(self) -> None:
        """Hold the lock, reconnecting if the connection that held it is gone."""
        if self.conn is not None:
            try:
                self.conn.execute(text("SELECT 1"))
                self.conn.commit()
                return
            except SQLAlchemyError:
                log.warning("lease holder %s: lost its lock connection; taking it again",
                            describe(self.owner))  # fmt: skip
                self.close()
        conn = self.engine.connect()
        try:
            conn.execute(_LOCK, {"cls": LOCK_CLASS, "key": lock_key(self.owner)})
            conn.commit()
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never back to the pool with the lock: closing ends it
            finally:
                conn.close()
