"""Feed URLs as people type them: the short form ``feeds`` shows, and finding a feed by it.

A feed's short form is its URL without ``http://``/``https://`` and a final ``/`` (host, port,
path and query stay), unless another archived feed would have the same one (the same address
over http and https): then both show their full URL. ``feeds show``, ``export --feed`` and
``reextract --feed`` take a full URL, a short form or any unambiguous beginning of either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def bare(url: str) -> str:
    for scheme in ("https://", "http://"):
        if url.lower().startswith(scheme):
            url = url[len(scheme):]
            break
    return url[:-1] if url.endswith("/") and url.count("/") == 1 else url


def short_forms(urls: Iterable[str]) -> dict[str, str]:
    """{URL: what ``feeds`` shows for it}."""
    urls = list(urls)
    counts = Counter(bare(url) for url in urls)
    return {url: bare(url) if counts[bare(url)] == 1 else url for url in urls}


def matching(given: str, urls: Iterable[str]) -> list[str]:
    """The feeds ``given`` names: the one whose URL or short form it is, else every feed whose
    URL begins with it, with or without its scheme (several: ambiguous; none: unknown)."""
    forms = short_forms(urls)
    exact = [url for url, short in forms.items() if given in (url, short)]
    if exact:
        return exact
    return sorted(url for url in forms if url.startswith(given) or bare(url).startswith(given))
