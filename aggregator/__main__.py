"""``python -m aggregator`` runs the same command as ``aggregator``."""

from aggregator.cli.commands import main

main()
