"""Subcommands of the `rocknet` CLI, one module each."""
