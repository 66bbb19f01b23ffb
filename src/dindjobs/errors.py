"""The one exception hierarchy of dindjobs.

Every error a user can meet is a subclass of :class:`DindjobsError`. Each carries a one-line
message (never a secret) and the exit code the CLI turns it into. Code below the CLI raises
these; only ``cli.py`` prints them.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes scripts can rely on (documented in the README)."""

    OK = 0
    ERROR = 1
    CHANGES_PENDING = 2
    PARTIAL_FAILURE = 3


class DindjobsError(Exception):
    """Base of every error dindjobs reports to a user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Lines the CLI prints above the message (e.g. JJB's "In project ..." chain and the
        # offending line), so the message itself stays the last line.
        self.details = tuple(details)

    def one_line(self) -> str:
        """The message as printed by the CLI: one line, with the hint if any."""
        text = " ".join(self.message.split())
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(DindjobsError):
    """Settings are missing, contradictory or unreadable."""


class SecretError(ConfigError):
    """A password or token could not be read from where it was said to be."""


class RenderError(DindjobsError):
    """JJB YAML could not be turned into job XML (syntax, template, names)."""


class JenkinsError(DindjobsError):
    """Anything that went wrong talking to Jenkins."""


class JenkinsConnectionError(JenkinsError):
    """Jenkins could not be reached (refused, reset, timed out, DNS)."""


class JenkinsNotReadyError(JenkinsError):
    """Jenkins answers but is not ready (503 while starting or restarting)."""


class JenkinsAPIError(JenkinsError):
    """Jenkins answered with an error status."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


class JenkinsAuthError(JenkinsAPIError):
    """Bad credentials (401) or a missing permission (403)."""


class JenkinsNotFoundError(JenkinsAPIError):
    """The job, folder, build or queue item does not exist (404)."""


class DockerEngineError(DindjobsError):
    """The Docker engine is missing, unreachable, or refused an operation."""


class WrapperError(DindjobsError):
    """The wrapper container is missing, stopped, or in an unexpected state."""


class VerificationError(DindjobsError):
    """A build did not succeed, or did not run in the nested daemon."""


class BackupError(DindjobsError):
    """An archive could not be written, read or trusted."""


class PartialFailure(DindjobsError):
    """Some items of a batch failed while the others succeeded."""

    exit_code = ExitCode.PARTIAL_FAILURE


class TimeoutExpired(DindjobsError):
    """A wait ran out of time; the message says the last state seen."""


class Interrupted(DindjobsError):
    """SIGINT or SIGTERM stopped the command; the exit code is 128 + the signal number."""

    def __init__(self, message: str, signal_number: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = 128 + signal_number  # type: ignore[assignment] - 130 or 143, not an ExitCode
