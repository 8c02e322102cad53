"""One pass of ``reader`` as a cron job would run it: open the database, update every feed, exit.

``--add FILE`` (the benchmark's set-up, not timed) adds the feeds listed in a JSON file instead.
``update_feeds`` runs with reader's defaults but two: ``workers`` (16 here, our shipped
``concurrency``) and ``scheduled=False`` (reader's default skips feeds updated within the hour,
so its second pass would poll nothing). Kept tiny on purpose: its start-up is reader's own.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from reader import make_reader


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("database")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--add", help="a JSON list of feed URLs to add, instead of updating")
    args = parser.parse_args(argv)
    # reader logs a warning for every feed that feedparser calls "bozo"; ours logs no line per
    # feed either, so both spend nothing on a terminal.
    logging.getLogger("reader").setLevel(logging.ERROR)
    reader = make_reader(args.database)
    try:
        if args.add:
            for url in json.loads(Path(args.add).read_text()):
                reader.add_feed(url, exist_ok=True)
        else:
            reader.update_feeds(workers=args.workers, scheduled=False)
    finally:
        reader.close()


if __name__ == "__main__":
    main()
