"""Progress and the end-of-run summary, with rich.

Progress counts images (not batches). The rate counts processed images only (done or failed; items skipped as done
by ``--resume`` excluded) over a sliding window of recent results, and the ETA divides what is left by that rate, so
neither jumps with bursty batches nor with a slow start (model loading is not in the window).

On a terminal it is a live bar; elsewhere (CI, ``nohup``, a cluster log) it is a plain line every few seconds, so a
log shows a batch job's progress while it runs. The summary is a table (ok, failed, skipped, images/s, per-stage
time) followed, on failures, by the first failed items, the ledger's path and how to re-run only what failed.
"""

from __future__ import annotations

import collections
import logging
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from .io.leftout import LeftOut
    from .summary import RunSummary

__all__ = ["IO_READ", "IO_WRITE", "ConsoleLogHandler", "Reporter", "Throughput", "format_duration"]

#: The node name under which a run's reading and decoding time is weighed, by the decoded megapixels.
IO_READ = "(read, decode)"
#: The node name under which a run's encoding and writing time is weighed, by the items: outputs mostly have a size
#: the recipe sets (a 1024 px square from a 6000 px photo as from a 600 px one), so their cost is per item, not per
#: source pixel (weighed by the source's pixels, a costly-first catalog's ETA fell to 60 % of the truth).
IO_WRITE = "(encode, write)"


def format_duration(seconds: float | None) -> str:
    """``"1h02m"``, ``"4m05s"``, ``"12s"``; ``"?"`` when unknown."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Throughput:
    """Processed images per second over the last ``window`` seconds of results, and the time left.

    The window starts at the first result (model loading and worker start-up are not work done). The rate is
    measured between two results a multiple of ``workers`` results apart (images between them over the time between
    them): with several workers, batches land in bursts (two workers finishing together), and two results a whole
    number of rounds apart sit at the same point of a round, so a steady run's rate is exact at every result
    however the batches interleave (issue 17: measured between any two results, the ETA swung from half to twice
    the truth in a 2-worker run). Until ``workers + 1`` results have come, the rate is ``expected``'s, when the
    cost model of ``imgx plan`` knows the run (:mod:`imgx.costs`), else unknown. The ETA counts down between results.

    Items do not all cost the same (a recipe that upscales only the small images: a catalog of small product shots
    then large photos ran its first third at a fifth of its final rate). Given ``work``, what each node will do over
    the whole catalog in :meth:`imgx.Stage.work` units (from the catalog's headers), and each result's seconds and
    work per node, the ETA is the stage time still to come (each node's work left at the seconds per unit measured so
    far) over the stage seconds done per second of the window (before that: one per worker). Reading and decoding
    count as one more node, :data:`IO_READ`, whose work is the decoded megapixels, encoding and writing as another,
    :data:`IO_WRITE`, whose work is the items. It falls back to the item count while a node with work ahead has done
    none yet, and where no header was read.

    :param total: catalog items the run goes through (skipped ones included).
    :param window: seconds of results the rate is measured over (at least ``workers + 1`` results are kept).
    :param clock: seconds, monotonic (a fake one in tests).
    :param workers: processes (or actors) that deliver results.
    :param expected: the run's expected seconds from start to end (the cost model's wall time), or ``None``.
    :param work: node id -> its expected work over all ``total`` items, or ``None``.
    """

    def __init__(
        self,
        total: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 1,
        expected: float | None = None,
        work: Mapping[str, float] | None = None,
    ) -> None:
        self.total = total
        self.window = window
        self.clock = clock
        self.workers = max(1, workers)
        self.expected = expected if expected and expected > 0 else None
        self.work_total = dict(work) if work else None
        self.work_done: dict[str, float] = {}
        self.seconds_done: dict[str, float] = {}
        self.started = clock()
        self.processed = 0
        self.skipped = 0
        self.failed = 0
        self._points: collections.deque[tuple[float, int, float]] = collections.deque()  # (time, items, stage s)

    @property
    def done(self) -> int:
        return self.processed + self.skipped

    def add(
        self,
        processed: int = 0,
        failed: int = 0,
        skipped: int = 0,
        *,
        seconds: Mapping[str, float] | None = None,
        work: Mapping[str, float] | None = None,
    ) -> None:
        """Record a result: ``processed`` images finished (``failed`` of them failed) and ``skipped`` ones passed;
        ``seconds`` and ``work``: what each node spent and did on them."""
        self.skipped += skipped
        self.failed += failed
        for into, values in ((self.seconds_done, seconds), (self.work_done, work)):
            for node, value in (values or {}).items():
                into[node] = into.get(node, 0.0) + value
        if not processed:
            return
        now = self.clock()
        self.processed += processed
        staged = sum(self.seconds_done.values())
        # the first result opens the window: its images were started at a time we do not know, so they mark the
        # window's start, not work done in it
        if len(self._points) == 1 and self._points[0][0] == now:
            self._points[0] = (now, self.processed, staged)  # another worker's result at the same moment: the start
            return
        self._points.append((now, self.processed, staged))
        while len(self._points) > self.workers + 1 and self._points[self.workers][0] <= now - self.window:
            for _ in range(self.workers):  # whole rounds, so the first point stays at the same place of a round
                self._points.popleft()

    @property
    def measured(self) -> bool:
        """Whether the rate is measured (``workers + 1`` results), not the cost model's."""
        return len(self._points) > self.workers

    def _window(self) -> tuple[tuple[float, int, float], tuple[float, int, float]] | None:
        """The first and last result of the measured window, ``workers`` results apart or a multiple of it."""
        last = len(self._points) - 1
        if last >= self.workers:
            first, end = self._points[last % self.workers], self._points[last]
            if end[0] > first[0]:
                return first, end
        return None

    @property
    def rate(self) -> float | None:
        """Processed images per second: measured once ``workers + 1`` results came, before that the cost model's
        (``expected``), else ``None``."""
        window = self._window()
        if window is not None:
            (t0, n0, _), (t1, n1, _) = window
            return (n1 - n0) / (t1 - t0)
        if self.expected is not None:
            return self.total / self.expected
        return None

    def stage_seconds_left(self) -> float | None:
        """Stage seconds (summed over workers) the items still to come will take: each node's work left at the seconds
        per unit it has measured. ``None`` without ``work``, or while a node with work ahead has done none."""
        if self.work_total is None or not self.work_done or self.total <= 0:
            return None
        share = (self.total - self.skipped) / self.total  # items skipped as done before do none of the work
        left = 0.0
        for node, expected in self.work_total.items():
            ahead = expected * share - self.work_done.get(node, 0.0)
            if ahead <= 0:
                continue
            done = self.work_done.get(node, 0.0)
            if done <= 0:
                return None
            left += self.seconds_done.get(node, 0.0) / done * ahead
        return left

    @property
    def eta(self) -> float | None:
        """Seconds left, or ``None`` while unknown: by the work left (see the class) where it is known, else by the
        items left at the current rate. It counts down from the last result for as long as results have come apart
        on average in the window, then holds until the next one: a batch running longer than those before it has
        not made progress the ETA can see (a costly-first run's ETA fell to half the truth while its last costly
        batch ran)."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        since = self._points[-1][0] if self._points else self.started
        elapsed = self.clock() - since
        if len(self._points) > 1:
            elapsed = min(elapsed, (self._points[-1][0] - self._points[0][0]) / (len(self._points) - 1))
        stage_left = self.stage_seconds_left()
        if stage_left:  # 0 with items left: the headers' sample fell short; the item count knows better
            window = self._window()
            speed = (window[1][2] - window[0][2]) / (window[1][0] - window[0][0]) if window else self.workers
            if speed > 0:
                return max(0.0, stage_left / speed - elapsed)
        rate = self.rate
        if not rate:
            return None
        return max(0.0, left / rate - elapsed)

    def line(self) -> str:
        """``40/200 images (20%), 3.2 images/s, ETA 50s, 1 failed, 10 skipped``: one plain progress line."""
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = self.rate
        text = f"{self.done:,}/{self.total:,} images{percent}, "
        eta = self.eta
        if rate and self.measured:
            text += f"{rate:,.2f} images/s, ETA {format_duration(eta)}"
        elif rate:  # the cost model's, until workers + 1 results come
            text += f"~{rate:,.2f} images/s (estimated), ETA ~{format_duration(eta)}"
        elif eta is not None:  # weighed by the work left, before the rate is measured
            text += f"rate after {self.workers + 1} results, ETA ~{format_duration(eta)}"
        else:
            text += f"rate and ETA after {self.workers + 1} results"
        text += f", {self.failed:,} failed"
        if self.skipped:
            text += f", {self.skipped:,} skipped (done before)"
        return text


class _StatsColumn(ProgressColumn):
    """images/s, ETA and failures from the reporter's :class:`Throughput` (red once there is a failure)."""

    def __init__(self, meter: Callable[[], Throughput | None]) -> None:
        super().__init__()
        self._meter = meter

    def render(self, task: Task) -> Text:
        meter = self._meter()
        if meter is None:
            return Text("")
        rate = meter.rate
        text = Text(f"{rate:,.1f} img/s  ETA {format_duration(meter.eta)}  " if rate else "", "progress.data.speed")
        text.append(f"{meter.failed:,} failed", style="bold red" if meter.failed else "dim")
        return text


class ConsoleLogHandler(logging.Handler):
    """Shows a logger's records on a rich console (above a live bar): model downloads during ``imgx run``."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(escape(self.format(record)), highlight=False, soft_wrap=True)
        except Exception:  # a log line must never break a run
            self.handleError(record)


class Reporter:
    """Shows progress while a run goes and prints its summary.

    :param console: where to print (stderr by default, so stdout stays clean for piping).
    :param enabled: show progress at all.
    :param plain: a plain line every ``interval`` seconds instead of a live bar (no terminal: CI, nohup, a log).
    :param interval: seconds between plain lines.
    """

    def __init__(
        self, console: Console | None = None, *, enabled: bool = True, plain: bool = False, interval: float = 5.0
    ) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.plain = plain
        self.interval = interval
        self.meter: Throughput | None = None
        self._progress: Progress | None = None
        self._task = None
        self._name = ""
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def start(
        self,
        total: int,
        description: str,
        *,
        workers: int = 1,
        expected: float | None = None,
        work: Mapping[str, float] | None = None,
    ) -> None:
        """Show progress of ``total`` items done by ``workers`` processes; ``expected``: the cost model's seconds for
        the whole run (:mod:`imgx.costs`), the ETA until the rate is measured; ``work``: each node's expected work
        over the catalog, which the ETA weighs the items left by (:class:`Throughput`)."""
        self.meter = Throughput(total, workers=workers, expected=expected, work=work)
        self._name = description
        if not self.enabled:
            return
        if self.plain:
            self.console.print(escape(f"{description}: {total:,} images to go"), highlight=False, soft_wrap=True)
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="imgx-progress", daemon=True)
            self._ticker.start()
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images"),
            _StatsColumn(lambda: self.meter),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(escape(description), total=total)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print_line()

    def _print_line(self) -> None:
        if self.meter is not None:
            self.console.print(escape(f"{self._name}: {self.meter.line()}"), highlight=False, soft_wrap=True)

    def advance(
        self,
        images: int,
        failed: int,
        *,
        seconds: Mapping[str, float] | None = None,
        work: Mapping[str, float] | None = None,
    ) -> None:
        """``images`` were processed (done or failed), ``failed`` of them failed; ``seconds`` and ``work`` per node."""
        if self.meter is not None:
            self.meter.add(processed=images, failed=failed, seconds=seconds, work=work)
        if self._progress is not None:
            self._progress.update(self._task, advance=images)

    def skip(self, images: int) -> None:
        """``images`` were skipped as done by an earlier run: they move the bar, not the rate."""
        if self.meter is not None:
            self.meter.add(skipped=images)
        if self._progress is not None:
            self._progress.update(self._task, advance=images)

    def stop(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
            self._print_line()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def left_out(self, found: LeftOut | None) -> None:
        """What a folder catalog's patterns left out: a warning when images were, a quiet line for other files."""
        if found is None or not found.total:
            return
        if found.images:
            self.warn(found.describe())
        else:
            self.console.print(f"[dim]{escape(found.describe())}[/]", highlight=False, soft_wrap=True)

    def summary(self, summary: RunSummary, *, rerun: str) -> None:
        """Print the summary table; on failures, the first failures, the ledger and the command to re-run them."""
        self.left_out(summary.left_out)
        if summary.dry_run:
            todo = summary.items - summary.items_skipped
            self.console.print(
                f"dry run: {summary.items:,} item(s) in the catalog; {todo:,} would be processed and "
                f"{summary.items_skipped:,} skipped as done ({summary.outputs_skipped:,} output(s)); output folder "
                f"{escape(str(summary.out_dir))}; nothing was read or written",
                soft_wrap=True,
            )
            return
        table = Table(title=f"imgx run {summary.run_id}", show_header=True, header_style="bold")
        table.add_column("")
        table.add_column("items", justify="right")
        table.add_column("outputs", justify="right")
        table.add_row("[green]ok[/]", f"{summary.items_done:,}", f"{summary.outputs_ok:,}")
        table.add_row("[red]failed[/]", f"{summary.items_failed:,}", f"{summary.outputs_failed:,}")
        table.add_row("[dim]skipped (done before)[/]", f"{summary.items_skipped:,}", f"{summary.outputs_skipped:,}")
        table.add_row("total", f"{summary.items:,}", "")
        self.console.print(table)
        self.console.print(
            f"{summary.images_per_second:,.2f} images/s over {summary.seconds:,.{2 if summary.seconds < 10 else 1}f} s "
            f"({summary.executor} executor, {summary.workers} worker{'s' if summary.workers != 1 else ''})"
        )
        if summary.outputs_flagged:
            flags = ", ".join(f"{flag} {count:,}" for flag, count in sorted(summary.flag_counts.items()))
            self.console.print(
                f"[yellow]{summary.outputs_flagged:,} output(s) written but flagged[/] ({escape(flags)}): the ledger's "
                "flags and metrics columns say why; `imgx report` counts them",
                soft_wrap=True,
            )
        if summary.variants_manifest is not None:
            self.console.print(
                f"variants manifest: {summary.variants_manifest:,} output(s) made per variant, in "
                f"{escape(str(summary.variants_path))} (and .csv)",
                soft_wrap=True,
            )
        if summary.stage_seconds:
            title = "time per stage (summed over workers)"
            stages = Table(title=title, header_style="bold", min_width=len(title))
            stages.add_column("node")
            stages.add_column("seconds", justify="right")
            stages.add_column("ms / item", justify="right")
            processed = max(summary.items_done + summary.items_failed, 1)
            for node_id, seconds in sorted(summary.stage_seconds.items(), key=lambda kv: -kv[1]):
                stages.add_row(escape(node_id), f"{seconds:,.2f}", f"{1000 * seconds / processed:,.1f}")
            self.console.print(stages)
        if summary.items_failed:
            failures = Table(title=f"first failures (of {summary.outputs_failed:,})", header_style="bold")
            for column in ("sku", "output", "stage", "error"):
                failures.add_column(column, overflow="fold")
            for row in summary.failures:
                failures.add_row(*map(escape, (row.sku, row.output, row.stage, row.error)))
            self.console.print(failures)
            verdict = "within" if summary.within_budget else "[bold red]over[/]"
            self.console.print(
                f"{summary.items_failed:,} failed item(s): {verdict} the failure budget "
                f"({_budget_text(summary)}, execution.max_failures)"
            )
            self.console.print(f"ledger: {escape(str(summary.ledger_dir))}", soft_wrap=True)
            self.console.print(f"re-run only what is not done: {escape(rerun)}", highlight=False, soft_wrap=True)

    @staticmethod
    def rerun_command(recipe: str, overrides: Sequence[str], options: Sequence[str] = ()) -> str:
        """The shell command that resumes this run: the same recipe, overrides and ``options`` (the other flags that
        shape the run, e.g. ``--plugins-dir DIR``, without which a resumed run may not even find its stages)."""
        parts = ["imgx", "run", recipe, "--resume"]
        for assignment in overrides:
            parts += ["--set", assignment]
        return shlex.join([*parts, *options])


def _budget_text(summary: RunSummary) -> str:
    """``5% of 120 items = 6`` for a fraction, ``3 items`` for a count."""
    limit = summary.max_failures
    if isinstance(limit, float):
        return f"{limit * 100:g}% of {summary.items:,} items = {summary.failure_budget:.4g}"
    return f"{limit:,} item(s)"
