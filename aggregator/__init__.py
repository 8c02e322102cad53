"""Archives what news feeds publish: polling, fetching, extraction, the CLI and the service."""
