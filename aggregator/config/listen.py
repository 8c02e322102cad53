"""Where a server of ours listens, and who may reach it: one rule for the web view (issue 16) and
the metrics endpoint. Pure: the address is read, never resolved or bound here.

The rule: a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) is served as it is; any
other address needs a bearer token (``service.listen_token`` or ``--token``), or an explicit
``service.listen_public: true`` (``--public``) saying that whoever reaches the port may read.
A token, once set, is required on every address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from aggregator.errors import ConfigError

_HOST_PORT = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]/]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Listen:
    """A parsed ``HOST:PORT`` (``[::1]:8322`` for IPv6); port 0 lets the system choose."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}/"


def parse_listen(value: str) -> Listen:
    """``HOST:PORT`` or a ``ValueError`` saying what is wrong with it."""
    match = _HOST_PORT.match(value.strip())
    if match is None:
        raise ValueError(f"bad listen address {value[:80]!r}: use HOST:PORT, e.g. 127.0.0.1:8322 "
                         "or [::1]:8322")  # fmt: skip
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"bad listen address {value[:80]!r}: port {port} is above 65535")
    host = match["v6"] or match["host"]
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad listen address {value[:80]!r}: {host} is no IPv6 address"
                             ) from None  # fmt: skip
    return Listen(host, port)


def check_exposure(what: str, listen: Listen, token: str | None, public: bool) -> None:
    """Refuse to serve ``what`` beyond this machine without a token or an explicit public flag."""
    if listen.loopback or token or public:
        return
    raise ConfigError(
        f"{what}: listening on {listen.host}:{listen.port} lets other machines read the archive: "
        "set service.listen_token (or pass --token) so that requests must carry it, or "
        "service.listen_public: true (--public) to allow anyone who reaches the port"
    )
