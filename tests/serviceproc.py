"""The service as a subprocess for tests, its standard error collected by a thread as it comes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).parent.parent


class ServiceProcess:
    """``argv`` run from the repository with it on PYTHONPATH; ``env`` adds or (None) removes."""

    def __init__(self, argv: list[str], env: Mapping[str, str | None] | None = None) -> None:
        environ = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=environ, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def started(self) -> bool:
        return "service started" in self.stderr or self.proc.poll() is not None

    def go(self) -> None:
        """Let a pre-warmed runner (tests/crashrunner.py) start the service."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=5)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return self.proc.returncode
