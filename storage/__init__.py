"""The archive: database, deduplication, revisions, captures, export and import. Never imports aggregator."""
