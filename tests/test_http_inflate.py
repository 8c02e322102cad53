"""Bounded decoding as invariants: any chunking round-trips, and no call exceeds its limit."""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.fetch.inflate import InflateError, Inflater


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


PACKERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": raw_deflate,
    "identity": bytes,
}


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200)
@given(
    data=st.binary(max_size=4000) | st.text(max_size=2000).map(str.encode),
    coding=st.sampled_from(sorted(PACKERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_any_chunking_round_trips(data: bytes, coding: str, cuts: list[int]) -> None:
    inflater = Inflater(coding.removesuffix("-raw"))
    out = b"".join(inflater.feed(chunk, 10**9) for chunk in split(PACKERS[coding](data), cuts))
    assert out == data


@given(
    size=st.integers(min_value=0, max_value=200_000),
    limit=st.integers(min_value=1, max_value=70_000),
)
def test_output_never_exceeds_the_limit(size: int, limit: int) -> None:
    inflater = Inflater("gzip")
    out = inflater.feed(gzip.compress(b"\0" * size), limit)
    assert len(out) == min(size, limit)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_unknown_or_stacked_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(InflateError, match="unsupported Content-Encoding"):
        Inflater(encoding)


@pytest.mark.parametrize("encoding", ["", "identity", " Identity ", "gzip, identity", "GZIP"])
def test_identity_is_ignored_and_names_are_case_blind(encoding: str) -> None:
    inflater = Inflater(encoding)
    payload = b"abc"
    packed = gzip.compress(payload) if "gzip" in encoding.lower() else payload
    assert inflater.feed(packed, 100) == payload


def test_garbage_after_the_stream_is_ignored() -> None:
    assert Inflater("gzip").feed(gzip.compress(b"feed") + b"\r\n\0junk", 100) == b"feed"
    assert Inflater("deflate").feed(zlib.compress(b"feed") + b"junk", 100) == b"feed"


def test_corrupt_data_raises_inflate_error() -> None:
    with pytest.raises(InflateError, match="corrupt gzip body"):
        Inflater("gzip").feed(b"\x1f\x8b\x08\x00garbage-garbage", 100)
