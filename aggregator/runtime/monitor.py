"""What the daemon tells the outside: metrics, the /healthz and /metrics endpoint, and systemd.

The daemon calls four hooks: ``start`` (after migrations, before the first tick), ``ticked``
(each dispatch tick that ran), ``reloading``/``reloaded`` around a configuration reload and
``stop``. Everything is off by default: without ``service.listen`` no library is loaded and the
recorder records nothing; without $NOTIFY_SOCKET no datagram is sent. Helper processes record
their own counts (``metrics``) but serve nothing and never notify systemd.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.config import Settings
from aggregator.errors import ArchiverError
from aggregator.runtime import metrics
from aggregator.runtime.health import Endpoint, Health, bind, build_app
from aggregator.runtime.sdnotify import Notifier
from storage.seam import StorageType

log = logging.getLogger(__name__)

VITALS_TIMEOUT = 2.0  # a scrape leaves the archive's gauges out rather than wait longer


class Monitor:
    """One per service instance; ``main`` is the instance that serves and notifies."""

    def __init__(self, settings: Settings, store: StorageType, *, main: bool) -> None:
        self.store = store
        self.main = main
        self.listen = settings.service.listen
        self.notifier = Notifier.take() if main else Notifier(None)
        self.health = Health(settings.service.tick, store.probe)
        self.directory: Path | None = None
        if main and self.listen:
            self.directory = metrics.prepare_multiprocess()
        self.recorder = self._recorder()
        self.endpoint: Endpoint | None = None
        # Other ASGI apps served beside the endpoints, same listener and token rule, set before
        # ``start``: the seam for the web view (``service.web``), e.g. [("/", app)].
        self.mounts: list[tuple[str, Any]] = []
        self._token = settings.service.listen_token
        self._taken = store.leases_taken_over
        self._ready = False

    def _recorder(self) -> metrics.Recorder:
        counting = self.listen and (self.main or metrics.MULTIPROC_ENV in os.environ)
        if not counting:
            return metrics.Recorder()
        name = "main" if self.main else multiprocessing.current_process().name
        return metrics.PromRecorder(name)

    async def start(self) -> None:
        """Bind and serve (main instance, ``service.listen`` set); a taken port stops the start."""
        if not self.main or not self.listen:
            return
        app = build_app(self.health, self._scrape, self._token, self.mounts)
        self.endpoint = Endpoint(app, bind(self.listen))
        await self.endpoint.start()
        log.info("serving /healthz and /metrics on http://%s", self.endpoint.address)

    def ticked(self) -> None:
        """A dispatch tick ran: heartbeat, watchdog, samples; the first one says READY."""
        self.health.beat()
        self.recorder.tick()
        total = self.store.leases_taken_over
        self.recorder.takeovers(total - self._taken)
        self._taken = total
        if not self._ready:
            self._ready = True
            self.notifier.ready("polling")
        self.notifier.watchdog()

    def reloading(self) -> None:
        self.notifier.reloading()

    def reloaded(self, ok: bool) -> None:
        if self.main:
            self.recorder.reload(ok)
        self.notifier.ready("polling" if ok else "polling; the last reload was refused")

    async def stop(self) -> None:
        self.notifier.stopping()
        if self.endpoint is not None:
            await self.endpoint.stop()
            self.endpoint = None

    def close(self) -> None:
        """After the helpers are gone: remove the metrics files."""
        metrics.finish_multiprocess(self.directory)
        self.directory = None

    async def _scrape(self) -> bytes:
        assert isinstance(self.recorder, metrics.PromRecorder)
        self.recorder.flush()  # this process's counts since its last tick
        gauges = await self._gauges()
        return await asyncio.to_thread(metrics.exposition, self.recorder, self.directory, gauges)

    async def _gauges(self) -> metrics.ArchiveGauges | None:
        now = datetime.now(UTC)
        try:
            vitals = await asyncio.wait_for(asyncio.to_thread(self.store.vitals, now),
                                            VITALS_TIMEOUT)  # fmt: skip
        except (TimeoutError, ArchiverError) as exc:
            log.warning("metrics: the archive's gauges are left out: %s", exc or "timed out")
            return None
        oldest = vitals.oldest_success
        return metrics.ArchiveGauges(
            database_bytes=vitals.database_bytes,
            feeds_active=vitals.feeds_active,
            feeds_overdue=vitals.feeds_overdue,
            oldest_success_age=(now - oldest).total_seconds() if oldest else None,
            last_tick_age=self.health.tick_age(),
        )
