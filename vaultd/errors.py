"""The one error family of vaultd.

Every error carries an exit code (for ``cli.main``) and a hint a person can
act on. Raise at the lowest layer that knows what went wrong; catch only at
task boundaries (one device, one job, one request, ``cli.main``).
"""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error vaultd raises on purpose."""

    exit_code: int = 2
    code: str = "vault_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(VaultError):
    """Bad input from a person: an argument, a file, an id."""

    exit_code = 2
    code = "bad_input"


class NotFoundError(UsageError):
    """The thing named does not exist (or is not visible to the actor)."""

    exit_code = 4
    code = "not_found"


class ConfigError(VaultError):
    """A configuration file or value is wrong."""

    exit_code = 3
    code = "config_error"


class DriverError(VaultError):
    """A camera driver failed; wraps the driver's own exception."""

    exit_code = 5
    code = "driver_error"


class DeviceGoneError(DriverError):
    """The camera disappeared (unplugged, EIO/ENODEV/ENXIO/ENOTCONN)."""

    code = "device_gone"


class StorageError(VaultError):
    """The vault's own storage failed (disk full, permissions, I/O)."""

    exit_code = 6
    code = "storage_error"


class DiskFullError(StorageError):
    """Not enough free space (below the configured reserve, or ENOSPC)."""

    code = "disk_full"


class AccessDeniedError(VaultError):
    """The acting user may not do this; ``rule`` names the rule that decided."""

    exit_code = 7
    code = "access_denied"

    def __init__(self, message: str, *, rule: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule


class IntegrityError(VaultError):
    """Stored evidence or the log does not match what was recorded.

    Never downgraded to a warning.
    """

    exit_code = 8
    code = "integrity_error"


class HashMismatchError(IntegrityError):
    code = "hash_mismatch"


class LogTamperedError(IntegrityError):
    code = "log_tampered"


class IncompleteError(VaultError):
    """A job finished, but not everything it was asked to do is done."""

    exit_code = 1
    code = "incomplete"


class AuthenticationError(VaultError):
    """No credentials, or wrong ones (HTTP 401)."""

    exit_code = 7
    code = "unauthenticated"


class TooManyAttemptsError(AuthenticationError):
    """Failed logins from this source or for this name are being slowed (HTTP 429)."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, hint: str | None = None, retry_after_s: int = 60) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s
