"""`catalog serve`: the Docker Engine API for images, answered from the catalog.

- `versions`: API versions, the `/vX.Y` prefix and Docker's negotiation rules (pure).
- `documents`: the JSON documents of each endpoint, shaped by the requested API version
  (pure: they take what the services return).
- `routing`: the route table, Docker's status for each error, JSON responses.
- `params`: request parameters, parsed as the daemon parses them.
- `jobs`: the threads that load a spooled archive and write a saved one into a pipe.
- `docker_routes`, `catalog_routes`: the handlers of Docker's endpoints and of catalog's
  own (under `/catalog/`, described by `openapi`).
- `app`: the ASGI application: dispatch, transactions in worker threads, request bodies.
- `web`: the read-only web view at `/` (its own package: pages, templates, policy).
- `listen`: where to listen (TCP, a unix socket, TLS), the safety checks, and uvicorn.

Handlers call the same services and operations as the CLI; nothing here writes SQL.
"""
