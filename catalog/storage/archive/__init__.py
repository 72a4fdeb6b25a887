"""Image archives as `docker save` writes them and `docker load` reads them
(docs/archives.md §1, §6). Pure: no SQLAlchemy, no Typer; nothing is ever extracted to the
host file system.

- `source`: read access to an archive's members (a tar file, an OCI layout directory, or a
  stream or compressed file spooled to a temporary file), bounded and confined.
- `formats`: what an archive says: `manifest.json` (docker save, Docker 25+, ggcr tarballs)
  or an OCI image layout; the images in it, their configs, layers and names.
- `writer`: Docker 25+ archives (OCI layout plus `manifest.json`), as `catalog save` writes.

Import from the submodules; this package re-exports nothing.
"""
