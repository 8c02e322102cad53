"""The archive: database, dedup, revisions, captures, export, import. Never imports aggregator."""
