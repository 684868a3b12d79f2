"""``python -m fsstore`` runs the command line."""

from fsstore.cli import entry_point

entry_point()
