"""The exceptions catalog raises for a user's mistake or a refused input.

Each carries the exit code the CLI uses; anything that is not a CatalogError is a bug.
"""


class CatalogError(Exception):
    """Base of every error a user can cause; the CLI prints its message on one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(CatalogError):
    """An image, reference, container or blob that does not exist."""


class Conflict(CatalogError):
    """The operation would break a rule (a tag in use, a running container, ...)."""


class InvalidReference(CatalogError):
    """A reference that Docker's grammar rejects; the message is Docker's text."""


class InvalidDigest(CatalogError):
    """A digest that is not `algorithm:hex` of the right shape, or that does not match."""


class InvalidFilter(CatalogError):
    """A listing filter Docker would refuse; the message is Docker's text."""


class InvalidArchive(CatalogError):
    """An image archive that is malformed, hostile or fails verification."""


class SchemaOutOfDate(CatalogError):
    """The database is at another schema revision than this catalog needs."""


class CorruptBlob(CatalogError):
    """A stored blob whose content no longer matches its digest."""
