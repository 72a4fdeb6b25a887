"""`catalog serve`: the Docker Engine API for images, answered from the catalog.

- `versions`: API versions, the `/vX.Y` prefix and Docker's negotiation rules (pure).
- `documents`: the JSON documents of each endpoint, shaped by the requested API version
  (pure: they take what the services return).
- `app`: the ASGI application: routing, parameters, errors, streaming load and save.
- `openapi`: the OpenAPI document of catalog's own endpoints (under `/catalog/`).
- `listen`: where to listen (TCP, a unix socket, TLS), the safety checks, and uvicorn.

Handlers call the same service functions as the CLI; nothing here writes SQL.
"""
