"""Errors from talking to a registry: each one line, naming what failed."""

from __future__ import annotations

from catalog.errors import CatalogError, NotFound


class RegistryError(CatalogError):
    """A registry refused or failed a request, or answered something we cannot use."""


class Unauthorized(RegistryError):
    """The registry wants credentials we do not have, or refused the ones we sent."""


class ManifestUnknown(RegistryError, NotFound):
    """No manifest for a tag or digest (docker: `manifest for X not found`)."""


class InsecureRefused(RegistryError):
    """Plain HTTP or an unverified certificate, for a registry not named insecure."""
