"""`catalog fsck`: check that the rows and the content store tell the same, true story.

Checked, each problem one line `kind: subject: detail`:

- every blob file's content hashes to its name (re-hashed, streaming), every blob row has
  its file and the file's size is the row's (`blob-corrupt`, `blob-missing`, `blob-size`,
  `blob-unreadable`);
- every layer row: its chain ID is its parent's chain ID and diff ID combined (image spec),
  its parent and blob rows exist, its blob is its diff ID, and its diff size is the sum of
  the regular-file sizes in its tar, re-scanned in the same pass as the hash, as
  `catalog.storage.layers` computes it on the way in (`layer-chain-id`, `layer-parent-missing`,
  `layer-blob-missing`, `layer-blob`, `layer-diff-size`, `layer-tar-invalid`);
- every image: a config row whose sha256 is the image ID, which parses; its `image_layers`
  positions are 0..n-1 and their chain IDs are `chain_ids(rootfs.diff_ids)`; every listed
  layer exists; `top_chain_id` is the top one; `size` is the sum of its layers' diff sizes;
  its parent image exists (`image-config-missing`, `image-config-digest`,
  `image-config-invalid`, `image-layer-positions`, `image-layer-count`, `image-chain-id`,
  `image-layer-missing`, `image-top-chain-id`, `image-size`, `image-parent-missing`);
- every reference names an existing image and is a canonical reference Docker's grammar
  accepts (`reference-image-missing`, `reference-invalid`);
- no config, layer list, label or history row without its image (`orphan-rows`);
- every fact kept for the listing (docs/listing.md §12: a chain's reference count, an
  image's sort key, unique size, child, tag, digest and container counts, labels and
  names as JSON) is what its recomputation from the rows gives (`kept-fact`).

Errors make fsck exit 1. Warnings do not, because a healthy catalog can have them:

- `container-image-missing`: a container whose image is gone. `containers.image_id` is
  deliberately not a foreign key: as in Docker, `rmi -f` deletes an image a stopped
  container uses, and the container keeps the ID; that is not corrupt data;
- `layer-unused`, `blob-unused`, `blob-unreferenced` (a file without a row) and
  `temporary-file`: what a failed or killed load, append or squash leaves (and a
  killed upload's spool under `<root>/tmp`), and what `catalog gc` removes. Blob files
  without a row and temporary files are only reported once older than the grace period
  (an hour): younger ones may be a write in progress.

`--repair` fixes what can be re-derived from data that checked out, and never invents any:
a blob row's size from its verified file; a layer's diff size from its verified tar; an
image's size as the sum of its layers' (after those repairs); `top_chain_id` from layer rows
that match a verified config; a blob row whose file is missing, when no layer uses it
(deleted); references to missing images or that no command can name (deleted, and printed
so they can be tagged again); rows of images that do not exist (deleted); corrupt blob files
no row names and old temporary files (removed); and last, from the rows as repaired, every
kept fact that differs (rewritten). Everything else is reported as not
repaired, with the reason. Row repairs are one write transaction; files go after it commits.

Rows are read in bulk, a fixed number of queries whatever the catalog's size (configs
streamed), in one snapshot (REPEATABLE READ on PostgreSQL; a read transaction is one on
SQLite); files are read after, one at a time, in chunks. A blob row found without its file
is checked again afterwards, so a concurrent `rmi` is not reported as damage.

- `problems`: what fsck reports: problems, their safe fixes, the report;
- `rows`: the checks of the rows, read in one snapshot;
- `files`: the checks of the blob files, each read once;
- `repair`: applying the fixes (rows in one transaction, then files);
- `check`: `check_catalog`, which puts them together.
"""
