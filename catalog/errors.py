"""The exceptions catalog raises for a user's mistake or a refused input.

Each carries the exit code the CLI uses; anything that is not a CatalogError is a bug.
The server answers each with Docker's status (catalog.server.routing.status_of):
NotFound 404, Conflict 409, InvalidArgument (and its kinds) 400, anything else 500.
"""


class CatalogError(Exception):
    """Base of every error a user can cause; the CLI prints its message on one line.

    Raised as it is, it says that something outside the user's arguments failed: an
    operating-system or database condition, or data that does not check out.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(CatalogError):
    """An image, reference, container, report or blob that does not exist."""


class Conflict(CatalogError):
    """The operation would break a rule (a tag in use, a running container, ...)."""


class InvalidArgument(CatalogError):
    """An argument the command or request refuses: a bad option, value, name or input.

    Exit 1 in the CLI, 400 in the server; the kinds below say which Docker error it is.
    """


class InvalidReference(InvalidArgument):
    """A reference that Docker's grammar rejects; the message is Docker's text."""


class InvalidDigest(InvalidArgument):
    """A digest that is not `algorithm:hex` of the right shape, or that does not match."""


class InvalidFilter(InvalidArgument):
    """A listing filter Docker would refuse; the message is Docker's text."""


class InvalidArchive(InvalidArgument):
    """An image archive that is malformed, hostile or fails verification."""


class SchemaOutOfDate(CatalogError):
    """The database is at another schema revision than this catalog needs."""


class CorruptBlob(CatalogError):
    """A stored blob whose content no longer matches its digest."""


class SystemFailure(CatalogError):
    """An operating-system condition stopped the operation (no space left, an I/O error,
    permission denied, a read-only file system): not the user's mistake and not a bug.
    The message names what failed: `no space left on device while storing layer ...`."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def os_failure(error: OSError, doing: str) -> SystemFailure:
    """`error` as one line naming what was being done: `no space left on device while
    storing layer sha256:...`; the file is named when `doing` does not already."""
    reason = error.strerror or str(error) or type(error).__name__
    reason = reason[:1].lower() + reason[1:]
    message = f"{reason} while {doing}"
    filename = error.filename
    if filename is not None and str(filename) not in doing:
        message = f"{message}: {filename}"
    return SystemFailure(message, error.errno)
