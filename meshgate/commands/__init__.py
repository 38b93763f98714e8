"""Subcommands of the ``meshgate`` CLI, one module each."""
