"""Pages from before <article>: layout tables and <br>-separated lines, made into blocks; pure.

The generic extractor hands such a page back as the whole layout table (menu cell, masthead,
footer row) with the story's tail as bare inline runs between <br>s. Here the table gives way to
its story cell, and each run between <br>s becomes a block, so that the link-block and
footer rules of ``polish`` can judge share lines and "Read also" lists one line at a time.
"""

from __future__ import annotations

from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

_LAYOUT_SHARE = 0.8  # a table holding this much of the text is the page's layout ...
_CELL_SHARE = 0.5  # ... and its story is the cell holding at least this much of the table's
_INLINE_BLOCKS = frozenset({"p", "div", "li", "td", "th", "blockquote", "dd"})
_BLOCK_TAGS = frozenset({
    "p", "div", "ul", "ol", "li", "table", "tr", "td", "th", "blockquote", "h1", "h2", "h3", "h4",
    "h5", "h6", "pre", "figure", "dl", "dd", "dt", "hr", "section",
})


def unwrap_layout_table(root: HtmlElement) -> bool:
    """Replace a layout table by the children of its story cell; True when it did."""
    total = _chars(root)
    if not total:
        return False
    for table in root.iter("table"):
        if _chars(table) < _LAYOUT_SHARE * total:
            continue
        cells = [c for c in table.iter("td", "th") if c.find(".//td") is None]
        best = max(cells, key=_own_chars, default=None)
        if best is None or _own_chars(best) < _CELL_SHARE * _chars(table):
            return False
        _replace_with_children(table, best)
        return True
    return False


def split_br_runs(root: HtmlElement) -> bool:
    """Inline runs separated by <br> inside a block become <p> blocks; True when any did."""
    changed = False
    for block in list(root.iter(*_INLINE_BLOCKS)):
        if block.find("br") is not None and _mixed(block):
            _split(block)
            changed = True
    return changed


def _mixed(block: HtmlElement) -> bool:
    """A block with block children *and* bare inline runs: the runs are lines of their own."""
    kids = [c for c in block if isinstance(c.tag, str)]
    return any(c.tag in _BLOCK_TAGS for c in kids)


def _split(block: HtmlElement) -> None:
    """Each run of inline nodes between <br>s (or blocks) goes into a <p> of its own."""
    items: list[HtmlElement | str] = [block.text] if block.text else []
    block.text = None
    for child in list(block):
        tail, child.tail = child.tail, None
        block.remove(child)
        items.append(child)
        if tail:
            items.append(tail)
    run: list[HtmlElement | str] = []
    for item in items:
        if isinstance(item, str) or not _breaks(item):
            run.append(item)
            continue
        _flush(block, run)
        if item.tag != "br":
            block.append(item)
    _flush(block, run)


def _breaks(node: HtmlElement) -> bool:
    return isinstance(node.tag, str) and (node.tag == "br" or node.tag in _BLOCK_TAGS)


def _flush(block: HtmlElement, run: list[HtmlElement | str]) -> None:
    """Append the run as a <p> (when it holds any text or element), and empty it."""
    if any(not isinstance(i, str) or i.strip() for i in run):
        para = block.makeelement("p", {})
        last: HtmlElement | None = None
        for item in run:
            if isinstance(item, str):
                if last is None:
                    para.text = (para.text or "") + item
                else:
                    last.tail = (last.tail or "") + item
            else:
                para.append(item)
                last = item
        block.append(para)
    run.clear()


def _replace_with_children(table: HtmlElement, cell: HtmlElement) -> None:
    parent = table.getparent()
    if parent is None:
        return
    wrapper = table.makeelement("div", {})
    wrapper.text = cell.text
    for child in list(cell):
        wrapper.append(child)
    wrapper.tail = table.tail
    parent.replace(table, wrapper)


def _chars(node: HtmlElement) -> int:
    return len("".join(node.text_content().split()))


def _own_chars(cell: HtmlElement) -> int:
    """Text of the cell that is not link text: the story, not the menu."""
    linked = sum(len("".join(a.text_content().split())) for a in cell.iter("a"))
    return _chars(cell) - linked
