"""CLI commands: placeholder until its issue lands (see `issues`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to the parser."""
