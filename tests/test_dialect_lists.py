"""A list bound by ``storage.dialect.by_dialect`` on SQLite (one JSON array read by json_each)
finds what the expanding ``IN (?, ?, ...)`` it replaced found: the same rows for any strings,
NUL stripped as the column type strips it, and integers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, create_engine, insert, select

from storage.dialect import by_dialect, select_in
from storage.tables import CleanText

meta = MetaData()
things = Table("things", meta, Column("id", Integer, primary_key=True),
               Column("name", CleanText, index=True))  # fmt: skip
BY_NAME = by_dialect(lambda in_: select(things.c.id).where(in_(things.c.name, "values")))
BY_ID = by_dialect(lambda in_: select(things.c.name).where(in_(things.c.id, "values")))
NAMES = ["plain", 'quo"te', "back\\slash", "\\u0000", "uni ☃ é", "emoji 😀", "tab\tnl\n", "",
         "a\x00b"]  # fmt: skip
engine = create_engine("sqlite://")
meta.create_all(engine)
with engine.begin() as setup:
    setup.execute(insert(things), [{"name": n} for n in NAMES])  # "a\x00b" is stored as "ab"


def _expanding(values: list[str]) -> set[int]:
    query = select(things.c.id).where(things.c.name.in_(bindparam("v", expanding=True)))
    with engine.connect() as conn:
        return set(conn.execute(query, {"v": values}).scalars())


@given(st.lists(st.sampled_from([*NAMES, "ab", "a", "b\x00", "\x00"]) | st.text(), max_size=8))
def test_a_list_of_strings_finds_what_an_expanding_in_finds(values: list[str]) -> None:
    with engine.connect() as conn:
        found = {row.id for row in conn.execute(BY_NAME.of(conn), {"values": values})}
    assert found == _expanding(values)


def test_nul_is_stripped_and_integers_are_found() -> None:
    with engine.connect() as conn:
        assert sorted(r.id for r in select_in(conn, BY_NAME, ["a\x00b", "\x00emoji 😀"])) == [6, 9]
        assert sorted(r.name for r in select_in(conn, BY_ID, [1, 5, 99])) == ["plain", "uni ☃ é"]
        assert select_in(conn, BY_ID, []) == []
