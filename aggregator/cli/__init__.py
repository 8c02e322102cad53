"""The command line: commands, how results are shown, and the one-off page tools."""

from aggregator.cli.commands import main

__all__ = ["main"]
