"""Secrets in URLs: split credentials off, and redact what is shown or logged. Stdlib only.

One module for every place that prints a URL (logs, ``feeds``, ``feeds show``, poll history,
error messages, exports), so that the rule is written once (issue 11, "secrets stay secret").
It lives in ``storage`` because ``storage`` prints URLs too and must never import ``aggregator``.

- ``user:password@`` never reaches the database: :func:`split_credentials` takes it off the
  configured URL and the HTTP client sends it as Basic authentication to that origin only.
  Shown, a URL keeps the user name and loses the password (``user:***@``).
- Query parameters whose name says they are a secret (:data:`SECRET_PARAMS`, any case; also
  any name ending in ``_token``, ``_key``, ``_secret`` or ``_password``, or with ``-``) keep
  their name and lose their value (``?token=***``) wherever a URL is shown or logged. They stay
  in the database and in exports: a feed is identified by its URL, and the feed URL without
  them is another feed (an export must re-import onto the feeds the configuration names).
- Metrics labels, when there are any, go through :func:`redact_url` too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = frozenset({
    "token", "key", "apikey", "api_key", "api-key", "access_token", "auth", "auth_token",
    "password", "passwd", "pass", "pwd", "secret", "client_secret", "sig", "signature",
    "sessionid", "private_token", "x-amz-signature", "x-amz-credential", "x-goog-signature",
})  # fmt: skip
SECRET_SUFFIXES = ("_token", "_key", "_secret", "_password", "-token", "-key", "-secret",
                   "-password")
# a URL inside free text (an error message, a log line): up to whitespace or a closing quote
_URL_IN_TEXT = re.compile(r"""\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+""")
# scheme and userinfo as RFC 3986 reads them (a password follows the first colon) ...
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)@")
# ... and, to redact what is shown, more widely: up to the last "@" before the path, so that a
# password typed with a raw "#" or "?" in it is masked whole (over-masking a query is harmless)
_AUTHORITY = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/]*)@")


def is_secret_param(name: str) -> bool:
    name = unquote(name).strip().lower()
    return name in SECRET_PARAMS or name.endswith(SECRET_SUFFIXES)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``http://user:pw@host/f`` → (``http://host/f``, (user, pw)); a URL without them as is.

    User and password are percent-decoded (RFC 3986 §3.2.1 allows escapes in userinfo, and
    requires them for ``/ ? # @`` in a password).
    """
    match = _USERINFO.match(url)
    if match is None:
        return url, None
    user, _, password = match[2].partition(":")
    return match[1] + url[match.end() :], (unquote(user), unquote(password))


def has_raw_userinfo(url: str) -> bool:
    """A ``user:pass@`` whose password holds an unescaped ``#``, ``?`` (or ``@``): parsers
    would read the host out of the password. Such a URL is refused by the configuration.

    A path-less URL whose query holds an ``@`` (``https://h.example?to=a@b``) is not one: what
    parsers take for its host has no ``user:`` before a non-numeric "port".
    """
    wide = _AUTHORITY.match(url)
    if wide is None or _USERINFO.match(url) is not None:
        return False
    host = re.split("[?#]", wide[2], maxsplit=1)[0]
    return ":" in host and not host.rpartition(":")[2].isdigit()


def strip_credentials(url: str) -> str:
    """The URL without ``user:password@``: the feed's identity in the archive."""
    return split_credentials(url)[0] if "@" in url else url


def redact_url(url: str) -> str:
    """The URL as it may be shown: the password and secret query values replaced by ``***``.

    Never raises: the userinfo is found in the text, the query by ``urlsplit`` when it can.
    """
    if "@" in url:
        url = _AUTHORITY.sub(lambda m: f"{m[1]}{_mask_userinfo(m[2])}@", url, count=1)
    if "?" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    query = _redact_query(parts.query)
    if query == parts.query:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL in a message or a log line redacted by :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    """Punctuation that ends a sentence or a bracket is not part of the URL."""
    found = match[0]
    url = found.rstrip(").,;:]!")
    return redact_url(url) + found[len(url) :]


def _mask_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else user


def _redact_query(query: str) -> str:
    if not query:
        return query
    pairs = query.split("&")
    out = []
    for pair in pairs:
        name, eq, value = pair.partition("=")
        out.append(f"{name}={MASK}" if eq and value and is_secret_param(name) else pair)
    return "&".join(out)
