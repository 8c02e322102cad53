"""A configuration that would deactivate most of the archive's feeds is refused by the store,
whole, unless told to go on (issue 13); small archives (two active feeds or fewer) are exempt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.errors import RemovalRefused
from storage.feeds import removal_refused
from storage.records import FeedConfig
from storage.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def configs(*names: str) -> list[FeedConfig]:
    return [FeedConfig(url=f"https://{name}.example/feed") for name in names]


def active(store: Store) -> list[str]:
    return sorted(f.url for f in store.list_feeds() if f.active)


def test_most_feeds_leaving_at_once_is_refused_and_writes_nothing(store: Store) -> None:
    store.sync_feeds(configs("a", "b", "c", "d"), T0)
    with pytest.raises(RemovalRefused) as caught:
        store.sync_feeds(configs("a", "e"), T0, allow_removal=False)
    assert caught.value.retiring == ["https://b.example/feed", "https://c.example/feed",
                                     "https://d.example/feed"]  # fmt: skip
    assert caught.value.active == 4
    assert active(store) == [f"https://{n}.example/feed" for n in "abcd"], "e was not added"
    store.sync_feeds(configs("a", "e"), T0, allow_removal=True)
    assert active(store) == ["https://a.example/feed", "https://e.example/feed"]


def test_half_may_leave_and_inactive_feeds_do_not_count(store: Store) -> None:
    store.sync_feeds(configs("a", "b", "c", "d"), T0)
    store.sync_feeds(configs("a", "b"), T0, allow_removal=False)  # half: allowed
    store.sync_feeds(configs("a", "b", "x"), T0, allow_removal=False)
    with pytest.raises(RemovalRefused):  # 2 of the 3 active ones
        store.sync_feeds(configs("c"), T0, allow_removal=False)


@pytest.mark.parametrize(("retiring", "of", "refused"), [
    (1, 1, False), (2, 2, False), (2, 3, True), (1, 3, False), (2, 4, False), (3, 4, True),
    (0, 100, False), (51, 100, True),
])  # fmt: skip
def test_the_rule(retiring: int, of: int, refused: bool) -> None:
    assert removal_refused(retiring, of) is refused
