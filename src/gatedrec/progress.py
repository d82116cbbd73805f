"""Progress bars with rate and ETA, and a console that the CLI and the trainer share."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, soft_wrap=True)
LINE_INTERVAL_SECONDS = 30.0  # between progress lines when stderr is not a terminal


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.2f} {task.fields.get('unit', 'it')}/s")


def progress_bar(quiet: bool = False) -> Progress | LineProgress:
    """A progress bar with rate and ETA on a terminal; where stderr is not a terminal (a log file, a pipe, a job
    scheduler), a line with the same figures every LINE_INTERVAL_SECONDS instead; nothing when ``quiet``."""
    if not quiet and not sys.stderr.isatty():
        return LineProgress(float(os.environ.get("GATEDREC_PROGRESS_SECONDS", LINE_INTERVAL_SECONDS)))
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )


@dataclass
class LineTask:
    description: str
    total: float | None
    completed: float
    unit: str
    started: float
    last_line: float


class LineProgress:
    """The part of rich's Progress that gatedrec uses, writing a line per task to stderr at most every
    ``interval`` seconds (and one when a task finishes after having written one): done, total, rate and ETA."""

    def __init__(self, interval: float):
        self.interval = interval
        self.tasks: dict[int, LineTask] = {}

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, completed: float = 0, unit: str = "it",
                 **fields) -> int:
        now = time.monotonic()
        self.tasks[len(self.tasks)] = LineTask(description, total, completed, unit, now, now)
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def reset(self, task_id: int) -> None:
        task = self.tasks[task_id]
        task.completed, task.started = 0, time.monotonic()

    def update(self, task_id: int, completed: float | None = None, advance: float | None = None,
               description: str | None = None, **fields) -> None:
        task = self.tasks[task_id]
        task.description = description or task.description
        task.completed = completed if completed is not None else task.completed + (advance or 0)
        now = time.monotonic()
        finished = task.total is not None and task.completed >= task.total and task.last_line > task.started
        if now - task.last_line >= self.interval or finished:
            task.last_line = now
            console.print(progress_line(task, now), highlight=False, markup=False)


def progress_line(task: LineTask, now: float) -> str:
    elapsed = max(now - task.started, 1e-9)
    rate = task.completed / elapsed
    done = f"{task.completed:,.0f}" + (f"/{task.total:,.0f} ({task.completed / task.total:.0%})" if task.total else "")
    eta = ""
    if task.total and rate > 0:
        eta = f", ETA {format_seconds((task.total - task.completed) / rate)}"
    return f"{task.description}: {done} {task.unit}s, {rate:,.2f} {task.unit}/s, {format_seconds(elapsed)} elapsed{eta}"


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"
