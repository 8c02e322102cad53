"""Shared fixtures: the scripted HTTP server on 127.0.0.1, and the SQLite and PostgreSQL stores."""

from tests.dbfixtures import *  # noqa: F403  (fixtures: store_url, store)
from tests.httpserver import *  # noqa: F403  (fixture: http_server)
from tests.loopfixtures import *  # noqa: F403  (fixture: event_loops)
