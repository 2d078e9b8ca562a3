"""Command line for this concern (filled in by its issue)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Register this concern's commands on the top-level subparsers."""
    return None
