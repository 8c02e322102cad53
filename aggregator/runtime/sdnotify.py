"""systemd's readiness protocol (sd_notify(3)): one datagram per state change to $NOTIFY_SOCKET.

A dozen lines of the protocol, not a dependency: ``READY=1`` once migrations ran and the first
tick claimed work, ``WATCHDOG=1`` from every tick (a wedged loop stops them and systemd restarts
the service after ``WatchdogSec``), ``RELOADING=1`` around a configuration reload, ``STOPPING=1``
on shutdown. Outside systemd (no $NOTIFY_SOCKET) every call does nothing. Sends never raise: a
lost datagram must not stop the service.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

ENV = "NOTIFY_SOCKET"


class Notifier:
    """The main process's link to systemd; helpers get none (``take`` clears the variable)."""

    def __init__(self, address: str | None) -> None:
        # A leading '@' names a socket in the abstract namespace (sd_notify(3)).
        self.address = "\0" + address[1:] if address and address.startswith("@") else address

    @classmethod
    def take(cls, environ: MutableMapping[str, str] = os.environ) -> Notifier:
        """Read $NOTIFY_SOCKET and remove it, so helper processes spawned later never notify."""
        return cls(environ.pop(ENV, None) or None)

    def send(self, *states: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False if there is no socket or it failed."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never wait: a reader that fell behind must not stall the event loop (a full
                # queue blocks a datagram sender); the next tick sends again.
                sock.setblocking(False)
                sock.sendto("\n".join(states).encode(), self.address)
        except OSError as exc:  # BlockingIOError among them
            log.debug("sd_notify %s: %s", states, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload (systemd 253) match the reload to its request.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
