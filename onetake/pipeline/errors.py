"""The one error hierarchy of onetake.

    OnetakeError                  anything onetake reports to a person
    ├── SourceError               the source cannot be used (missing, empty, truncated, not media, hostile)
    ├── ProfileError              a profile or channel file is invalid
    ├── ConfigError               a farm config or a command-line value is invalid
    ├── PlanError                 the source and the asked channels do not fit together
    ├── EncodeError               ffmpeg failed, stalled or timed out (carries argv, status, stderr tail)
    │   └── EncodeStalled         ffmpeg made no progress and was stopped (worth another try)
    ├── StorageError              an output could not be written or delivered
    ├── VerificationError         an output does not meet its profile
    ├── IngestError               a watch-folder file or its sidecar cannot be taken as it is
    ├── LedgerError               the job ledger cannot be opened, or a job command does not apply
    ├── QcError                   the source breaks a channel's QC rules (the channel is not delivered)
    ├── FarmError                 the Dask farm lost the work: its scheduler went for good, or workers kept dying
    └── TaskCancelled             in-process work (the analysis) stopped because its Dask task was cancelled

Third-party exceptions (PyAV, subprocess, OS errors) are translated where they are raised, with
``raise ... from``, so the CLI can print ``str(error)`` as one line that says what to do. They cross the Dask
boundary whole (every one pickles with its fields), and callers decide by their type, never by their text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class OnetakeError(Exception):
    """Base of every error onetake raises on purpose."""


class SourceError(OnetakeError):
    """A source file cannot be read as the media it claims to be."""

    def __init__(self, path: str, cause: str, fix: str = "") -> None:
        self.path = path
        self.cause = cause
        self.fix = fix
        message = f"{path}: {cause}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # whole across Dask's pickling, fields and all
        return type(self), (self.path, self.cause, self.fix)


class ProfileError(OnetakeError):
    """A rendition profile or channel set is invalid."""


class ConfigError(OnetakeError):
    """A farm config file or option value is invalid."""


class PlanError(OnetakeError):
    """The source cannot feed the channels that were asked for."""


class EncodeError(OnetakeError):
    """An ffmpeg process failed; keeps everything needed to reproduce it."""

    def __init__(self, reason: str, argv: Sequence[str], returncode: int | None, stderr_tail: str) -> None:
        self.reason = reason
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        status = "no exit status" if returncode is None else f"exit status {returncode}"
        super().__init__(f"{reason} ({status}): {cause_line(stderr_tail)}")

    def __reduce__(self) -> tuple[type, tuple[str, list[str], int | None, str]]:
        return type(self), (self.reason, self.argv, self.returncode, self.stderr_tail)


class EncodeStalled(EncodeError):
    """An ffmpeg made no progress for ``stall_timeout_s`` (a hung read, a frozen process) and was killed: unlike a
    failure, another try may well succeed."""


# ffmpeg's closing lines say that it failed, not why
_AFTERMATH = re.compile(r"Task finished with error|Terminating thread|Nothing was written|Conversion failed|"
                        r"^Error : |Error while filtering|Error opening output files|Could not open encoder before EOF")
_CAUSE = re.compile(r"error|invalid|not allowed|only|no such|unknown|unable|cannot|could not|failed|not supported",
                    re.IGNORECASE)


def cause_line(stderr: str) -> str:
    """The stderr line most likely to say why ffmpeg failed: the first that names a problem, not the aftermath."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if not _AFTERMATH.search(line)]
    return next((line for line in useful if _CAUSE.search(line)), (useful or lines or ["no output"])[-1])


class StorageError(OnetakeError):
    """An output could not be stored or delivered."""


class VerificationError(OnetakeError):
    """An output failed the checks of its profile."""


class IngestError(OnetakeError):
    """A file dropped in a watch folder, or its sidecar, cannot be taken as it is."""


class LedgerError(OnetakeError):
    """The job ledger cannot be opened or read, or a job command does not apply to the job's state."""


class QcError(OnetakeError):
    """A channel's QC rules failed on the source; ``onetake run --qc warn`` delivers it anyway."""


class FarmError(OnetakeError):
    """The Dask farm lost the work: its scheduler went away and could not be reached again, or the workers running
    one task kept dying."""


class TaskCancelled(OnetakeError):
    """In-process work stopped because its Dask task was cancelled (nobody waits for its result)."""
