"""Where the commands write: results (tables, JSON, the paths they wrote) to stdout, so that they can be
redirected or piped; logs, progress and errors to stderr (gatedrec.progress.console)."""

from __future__ import annotations

import json
import sys

from rich.console import Console

# written to a file or a pipe, tables keep their full width instead of a terminal's default 80 columns
NOT_A_TERMINAL_WIDTH = 200
results = Console(soft_wrap=True, width=None if sys.stdout.isatty() else NOT_A_TERMINAL_WIDTH)


def print_json(data) -> None:
    """``data`` as JSON on stdout, nothing else on that line."""
    print(json.dumps(data, indent=2))


def describe(dataset) -> str:
    summary = dataset.summary()
    modalities = ", ".join(f"{name} ({info['dim']}-d)" for name, info in summary["modalities"].items()) or "no modality"
    return f"{summary['users']} users, {summary['items']} items, {summary['train']} training pairs, {modalities}"
