"""A training run as a child process: `python -m trainer ...` under QProcess, its stdout read as JSON-lines
events and the tail of its stderr kept for when it fails.

Training never runs in the viewer's process (ARCHITECTURE.md): a crash or an out-of-memory kill in training
must not take the viewer down, and the command the dialog runs is the one a user can run on a cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from medviewer.errors import one_line
from medviewer.gui.training_recipes import trainer_folder

# The trainer's exit codes (trainer/cli.py).
EXIT_DONE = 0
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130
STDERR_TAIL_LINES = 20
BAD_INPUT_PREFIX = "medviewer-train: error: "


class LineSplitter:
    """Bytes in as they arrive, complete lines out: a line cut between two reads waits for its end. Lines are
    split before decoding, so a UTF-8 character cut between two reads is decoded whole."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        *complete, self._pending = (self._pending + bytes(chunk)).split(b"\n")
        return [self._decode(line) for line in complete]

    def pending(self) -> str:
        """The line begun but not ended yet."""
        return self._decode(self._pending)

    def finish(self) -> list[str]:
        """The last line, if the stream ended without a newline."""
        rest, self._pending = self._pending, b""
        return [self._decode(rest)] if rest.strip() else []

    @staticmethod
    def _decode(line: bytes) -> str:
        return line.rstrip(b"\r").decode("utf-8", errors="replace")


class JsonLinesReader:
    """The trainer's stdout as events: each complete line that is a JSON object with an "event" field is one
    event (a dict); any other line comes back as text, so a stray print never hides the run's progress."""

    def __init__(self) -> None:
        self._lines = LineSplitter()

    def feed(self, chunk: bytes) -> list[dict | str]:
        return [self._parse(line) for line in self._lines.feed(chunk) if line.strip()]

    def finish(self) -> list[dict | str]:
        return [self._parse(line) for line in self._lines.finish()]

    @staticmethod
    def _parse(line: str) -> dict | str:
        try:
            record = json.loads(line)
        except ValueError:
            return line
        return record if isinstance(record, dict) and "event" in record else line


class TextTail:
    """The last `lines` lines of a stream (a traceback's end is what explains a failure)."""

    def __init__(self, lines: int = STDERR_TAIL_LINES) -> None:
        self._splitter = LineSplitter()
        self._lines: deque[str] = deque(maxlen=lines)

    def feed(self, chunk: bytes) -> None:
        self._lines.extend(self._splitter.feed(chunk))

    def lines(self) -> list[str]:
        """The tail so far, including a last line without its newline yet."""
        pending = self._splitter.pending()
        lines = [*self._lines, pending] if pending.strip() else list(self._lines)
        return lines[-(self._lines.maxlen or len(lines)) :]


@dataclass(frozen=True)
class RunOutcome:
    """How a trainer process ended. kind: "done", "cancelled", "bad-input" or "failed"."""

    kind: str
    exit_code: int | None  # None: it did not exit by itself (a signal, or it never started)
    message: str
    stderr_tail: tuple[str, ...] = ()


def classify_exit(
    exit_code: int | None, crashed: bool, cancel_requested: bool, stderr_tail: Sequence[str]
) -> RunOutcome:
    """Turn the trainer's exit into what the dialog says (exit codes of trainer/cli.py: 0 done, 2 bad input with
    one line on stderr, 130 stopped after a checkpoint; anything else, or death by a signal, is a failure)."""
    tail = tuple(line for line in stderr_tail if line.strip())
    if crashed:
        if cancel_requested:  # terminated before the trainer set its handler: nothing was trained yet
            return RunOutcome("cancelled", None, "Stopped before the first training step", tail)
        return RunOutcome(
            "failed",
            None,
            "The training process was killed (by the system, e.g. out of memory, or by a signal); the viewer is fine",
            tail,
        )
    if exit_code == EXIT_DONE:
        return RunOutcome("done", exit_code, "Done", tail)
    if exit_code == EXIT_CANCELLED:
        return RunOutcome("cancelled", exit_code, "Stopped after saving a checkpoint", tail)
    if exit_code == EXIT_BAD_INPUT:
        errors = [line for line in tail if line.startswith(BAD_INPUT_PREFIX)]
        line = (errors or tail or ("the trainer refused its input",))[-1]
        return RunOutcome("bad-input", exit_code, one_line(line.removeprefix(BAD_INPUT_PREFIX)), tail)
    last = tail[-1] if tail else "no error output"
    return RunOutcome("failed", exit_code, one_line(f"Training failed (exit code {exit_code}): {last}"), tail)


def trainer_command() -> list[str]:
    """How to start the trainer: this interpreter, `-m trainer` (the same as `medviewer-train`)."""
    return [sys.executable, "-m", "trainer"]


def run_arguments(
    recipe: str,
    data_folders: Sequence[Path],
    steps: int,
    device: str,
    runs_folder: Path,
    name: str = "",
    init: str | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """`trainer run` arguments; the run exports into the user models folder the viewer reads when done."""
    arguments = ["run", recipe, "--data", *(str(folder) for folder in data_folders)]
    arguments += ["--set", f"run.steps={int(steps)}", *overrides]
    arguments += ["--device", device, "--out", str(runs_folder)]
    if name:
        arguments += ["--name", name]
    if init:
        arguments += ["--init", init]
    return [*arguments, "--export"]  # last: its value is optional, it must not swallow another argument


def resume_arguments(run_folder: Path) -> list[str]:
    return ["resume", str(run_folder), "--export"]


def command_text(command: Sequence[str]) -> str:
    """The command as a user would type it (`python -m trainer ...`), for the log."""
    shown = ["python" if index == 0 and part == sys.executable else part for index, part in enumerate(command)]
    return shlex.join(shown)


def _process_environment() -> QProcessEnvironment:
    """The viewer's environment (so MEDVIEWER_MODELS_DIR and the like reach the trainer), with the trainer's
    parent folder on PYTHONPATH in case the package is not installed."""
    environment = QProcessEnvironment.systemEnvironment()
    folder = trainer_folder()
    if folder is not None:
        paths = [str(folder.parent), *filter(None, environment.value("PYTHONPATH", "").split(os.pathsep))]
        environment.insert("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))
    environment.insert("PYTHONUNBUFFERED", "1")
    return environment


class TrainingProcess(QObject):
    """One trainer process at a time. Signals: `eventReceived(dict)` per JSON event, `textReceived(str)` per
    other stdout line, then exactly one `finished(RunOutcome)` per started run (also if it never started)."""

    eventReceived = Signal(object)
    textReceived = Signal(str)
    finished = Signal(object)

    def __init__(self, parent: QObject | None = None, command: Sequence[str] | None = None):
        super().__init__(parent)
        self.command = list(command) if command is not None else trainer_command()
        self.last_command: list[str] = []
        self._process: QProcess | None = None
        self._reader = JsonLinesReader()
        self._stderr = TextTail()
        self._cancel_requested = False
        self._reported = False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    @property
    def process_id(self) -> int:
        return int(self._process.processId()) if self.running else 0

    def start(self, arguments: Sequence[str]) -> None:
        if self.running:
            raise RuntimeError("a training run is already running")
        self._reader, self._stderr = JsonLinesReader(), TextTail()
        self._cancel_requested = self._reported = False
        process = QProcess(self)
        process.setProcessEnvironment(_process_environment())
        folder = trainer_folder()
        if folder is not None:
            # Not the viewer's folder: `-m` looks in the working folder first, where another "trainer" may be.
            process.setWorkingDirectory(str(folder.parent))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        if self._process is not None:
            self._process.deleteLater()
        self._process = process
        self.last_command = [*self.command, *arguments]
        process.start(self.last_command[0], self.last_command[1:])

    def cancel(self) -> None:
        """SIGTERM: the trainer checkpoints after the current step and exits with 130."""
        if self.running:
            self._cancel_requested = True
            self._process.terminate()

    def kill(self) -> None:
        """SIGKILL: no checkpoint. Only for a trainer that does not answer `cancel`."""
        if self.running:
            self._process.kill()

    def wait(self, milliseconds: int) -> bool:
        return self._process is None or self._process.waitForFinished(milliseconds)

    def _read_stdout(self) -> None:
        for item in self._reader.feed(bytes(self._process.readAllStandardOutput())):
            self._emit(item)

    def _read_stderr(self) -> None:
        self._stderr.feed(bytes(self._process.readAllStandardError()))

    def _emit(self, item: dict | str) -> None:
        if isinstance(item, dict):
            self.eventReceived.emit(item)
        else:
            self.textReceived.emit(item)

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        for item in self._reader.finish():
            self._emit(item)
        crashed = status == QProcess.ExitStatus.CrashExit
        self._report(
            classify_exit(None if crashed else exit_code, crashed, self._cancel_requested, self._stderr.lines())
        )

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:  # no finished signal follows this one
            reason = self._process.errorString() if self._process is not None else str(error)
            self._report(RunOutcome("failed", None, one_line(f"The trainer could not start: {reason}")))

    def _report(self, outcome: RunOutcome) -> None:
        if not self._reported:
            self._reported = True
            self.finished.emit(outcome)
