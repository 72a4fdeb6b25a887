"""catalog as a client of registries (OCI distribution spec, Docker Registry HTTP API v2).

- `errors`: what a registry said, as one line naming the reference.
- `manifest`: manifests and indexes: media types, parsing, platform choice, building (pure).
- `settings`: insecure registries, mirrors and the certs.d directory (docker's rules).
- `credentials`: `~/.docker/config.json` and `docker-credential-*` helpers, read and written.
- `auth`: `WWW-Authenticate` challenges, HTTP basic and bearer tokens.
- `transport`: which endpoints (https verified, https unverified, http) a registry gets.
- `client`: the HTTP API: manifests, blobs, uploads, mounts, tags, over httpx.
- `progress`: docker's pull/push progress events, told to whoever draws them.

It writes blobs, never rows: the rows pull and push keep are catalog.services.distribution,
and the pull and push themselves (blobs into the store first, then rows in one
transaction) are catalog.operations.pull and catalog.operations.push.
"""
