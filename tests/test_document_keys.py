"""``storage.identity.document_keys``: the one rule for which entries of a document are one
entry (issue 10), held by properties over generated documents and by the cases that motivated
it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.feeds.feedmodel import finish_entries
from storage.identity import document_keys
from storage.records import Enclosure, Entry

HOME = "https://show.example/"
entries_st = st.builds(
    Entry,
    key=st.just(""),
    guid=st.sampled_from([None, "a", "b", "c"]),
    url=st.sampled_from([None, HOME, "https://show.example/1", "https://show.example/2"]),
    title=st.sampled_from([None, "T1", "T2", "T3"]),
    summary=st.sampled_from([None, "s1", "s2"]),
    enclosures=st.lists(
        st.sampled_from(["https://cdn.example/1.mp3", "https://cdn.example/2.mp3"]),
        max_size=2, unique=True,
    ).map(lambda urls: tuple(Enclosure(u) for u in urls)),
)  # fmt: skip
documents = st.lists(entries_st, max_size=12)


def readable(entry: Entry) -> tuple[object, ...]:
    """What a reader tells entries apart by (dates are not generated: they only enter hashes)."""
    return (entry.url, tuple(e.url for e in entry.enclosures), entry.title, entry.summary,
            entry.content_html)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(documents)
def test_one_key_exactly_for_entries_a_reader_cannot_tell_apart(doc: list[Entry]) -> None:
    keys = document_keys(doc).keys
    assert len(keys) == len(doc) and document_keys(doc).keys == keys  # aligned, deterministic
    for i, one in enumerate(doc):
        for j, other in enumerate(doc):
            alike = readable(one) == readable(other) and one.guid == other.guid
            assert (keys[i] == keys[j]) == alike, (one, other, keys[i], keys[j])


@settings(max_examples=300, deadline=None)
@given(documents)
def test_keyed_by_link_entries_apart_stay_apart(doc: list[Entry]) -> None:
    """Guids ignored (a feed whose guids change every poll): still never one key for two
    entries a reader can tell apart."""
    keys = document_keys(doc, trust_guids=False).keys
    for i, one in enumerate(doc):
        for j, other in enumerate(doc):
            assert (keys[i] == keys[j]) == (readable(one) == readable(other))


@settings(max_examples=300, deadline=None)
@given(documents, entries_st)
def test_a_repeat_changes_only_the_keys_of_the_entries_that_repeat(
    doc: list[Entry], new: Entry
) -> None:
    """Adding an entry leaves every other entry's key alone, unless they share its base key."""
    new = replace(new, guid="fresh")
    before = document_keys(doc).keys
    after = document_keys([new, *doc]).keys
    assert after[1:] == before
    assert after[0] == "guid:fresh"


@settings(max_examples=300, deadline=None)
@given(documents)
def test_an_entry_alone_with_its_guid_keeps_the_bare_guid(doc: list[Entry]) -> None:
    keys = document_keys(doc).keys
    for entry, key in zip(doc, keys, strict=True):
        carriers = [e for e in doc if e.guid == entry.guid]
        if entry.guid and len({readable(e) for e in carriers}) == 1:
            assert key == "guid:" + entry.guid


@settings(max_examples=300, deadline=None)
@given(documents)
def test_parsing_then_storing_agrees(doc: list[Entry]) -> None:
    """The parser's keys (``finish_entries``) are the store's keys for what the parser kept."""
    kept, _ = finish_entries(doc)
    assert document_keys(kept).keys == tuple(e.key for e in kept)
    assert len({e.key for e in kept}) == len(kept)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_a_link_is_shared_exactly_when_distinct_entries_carry_it(doc: list[Entry]) -> None:
    found = document_keys(doc)
    for entry in doc:
        if entry.url:
            keys = {k for e, k in zip(doc, found.keys, strict=True) if e.url == entry.url}
            assert (entry.url in found.shared_links) == (len(keys) > 1)
            assert found.owns_link(entry) == (len(keys) == 1)


def test_the_podcast_shape() -> None:
    """130 episodes, their own guids but one repeated, all linking the home page: 130 keys."""
    doc = [Entry("", f"ep{n}", HOME, f"Episode {n}", enclosures=(Enclosure(f"{HOME}{n}.mp3"),))
           for n in range(130, 0, -1)]  # fmt: skip
    doc[33] = replace(doc[33], guid=doc[34].guid)  # episode 97 carries episode 96's guid
    found = document_keys(doc)
    assert len(set(found.keys)) == 130
    assert found.keys[34] == "guid:ep96" and found.keys[33].startswith("guid:ep96#")
    assert found.shared_links == {HOME}
    assert [k for k in found.keys if "#" in k] == [found.keys[33]]


def test_key_kinds_cannot_pose_as_each_other() -> None:
    doc = [Entry("", "link:x", None, "a"), Entry("", None, "x", "b"),
           Entry("", None, None, "c", enclosures=(Enclosure("https://e/1"),))]  # fmt: skip
    keys = document_keys(doc).keys
    assert keys[0] == "guid:link:x" and keys[1] == "link:x"
    assert keys[2] == "enclosure:https://e/1"


def test_a_guid_that_looks_like_a_split_key_never_shares_it() -> None:
    doc = [Entry("", "g", None, "one"), Entry("", "g", None, "two")]
    split = document_keys(doc).keys[0]
    crafted = [*doc, Entry("", split.removeprefix("guid:"), None, "three")]
    keys = document_keys(crafted).keys
    assert len(set(keys)) == 3
