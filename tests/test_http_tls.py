"""https through the guarded backend: it connects to the vetted IP, yet TLS checks the host name."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aggregator.config.settings import HttpSettings
from aggregator.errors import FetchError
from aggregator.fetch.http import HttpClient, Response
from tests.httpserver import TestServer

pytestmark = pytest.mark.usefixtures("event_loops")  # on asyncio's loop and on uvloop's

NAME = "feeds.test"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for feeds.test (made by the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={NAME}",
         "-addext", f"subjectAltName=DNS:{NAME}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[TestServer, list[str | None]]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with TestServer(tls=context) as server:
        yield server, names


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def fetch(url: str, certificate: tuple[Path, Path], **overrides: Any) -> Response:
    config = HttpSettings.model_validate({"timeout": 3, "connect_timeout": 2} | overrides)

    async def go() -> Response:
        context = client_context(certificate)
        resolver = {NAME: ["127.0.0.1"], "other.test": ["127.0.0.1"]}.__getitem__
        async with HttpClient(config, resolver=lambda h, p: resolver(h), ssl_context=context) as c:
            return await c.get(url)

    return asyncio.run(go())


def test_https_keeps_sni_and_host_while_connecting_to_the_vetted_ip(
    tls_server: tuple[TestServer, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    server, names = tls_server
    server.route("/feed", body=b"secure")
    url = f"https://{NAME}:{server.port}/feed"
    response = fetch(url, certificate, allowed_networks=["127.0.0.1/32"])
    assert (response.status, response.body) == (200, b"secure")
    assert names == [NAME]
    assert server.requests[0].headers["host"] == f"{NAME}:{server.port}"


def test_https_certificate_is_checked_against_the_host_name(
    tls_server: tuple[TestServer, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    server, _ = tls_server
    server.route("/feed", body=b"secure")
    url = f"https://other.test:{server.port}/feed"
    with pytest.raises(FetchError, match=r"^fetch: network error \(ConnectError: .*CERTIFICATE"):
        fetch(url, certificate, allowed_networks=["127.0.0.1/32"])
    assert server.requests == []


def test_https_to_a_forbidden_address_never_starts_a_handshake(
    tls_server: tuple[TestServer, list[str | None]], certificate: tuple[Path, Path]
) -> None:
    server, names = tls_server
    url = f"https://{NAME}:{server.port}/feed"
    with pytest.raises(FetchError, match=r"^fetch: blocked address 127\.0\.0\.1 \(loopback\)"):
        fetch(url, certificate)
    assert names == [] and server.requests == []


def test_the_ca_store_loads_at_the_first_https_connection_only(
    tls_server: tuple[TestServer, list[str | None]], certificate: tuple[Path, Path],
    http_server: TestServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An http-only run never builds a TLS context; https builds one, once, with our ALPN."""
    made: list[ssl.SSLContext] = []

    def create(trust_env: bool) -> ssl.SSLContext:
        assert trust_env is False
        made.append(client_context(certificate))
        return made[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", create)
    server, _ = tls_server
    server.route("/feed", body=b"secure")
    http_server.route("/feed", body=b"plain")
    config = HttpSettings.model_validate({"timeout": 3, "allowed_networks": ["127.0.0.1/32"]})

    async def go() -> list[bytes]:
        resolver = {NAME: ["127.0.0.1"]}.__getitem__
        async with HttpClient(config, resolver=lambda h, p: resolver(h)) as client:
            plain = await client.get(http_server.url("/feed"))
            assert made == []
            secure = [await client.get(f"https://{NAME}:{server.port}/feed") for _ in range(2)]
            return [plain.body, *(r.body for r in secure)]

    assert asyncio.run(go()) == [b"plain", b"secure", b"secure"]
    assert len(made) == 1
