"""The web view `catalog serve` shows at `/`: read-only pages of the live catalog.

- `app`: the ASGI application (Starlette routes, static files, error pages) and which
  paths are its own (`/` and `/web/...`).
- `policy`: its same-origin policy (GET and HEAD only, the Host the server is served as,
  no cross-site requests but navigations) and security headers (Content-Security-Policy).
- `pages`: the pages: images (the listing, a page at a time), an image, a layer, reports.
- `forms`: what a page's URL says (the filter box, toggles, sort, page anchors, a
  report's options).
- `templating`: Jinja2, autoescaping everything, with filters for sizes, IDs and times.
- `templates/`, `static/`: the HTML templates, and the stylesheet, script and icon it
  serves itself (nothing comes from the network).

Pages read through the same services as the CLI and the Engine API: a read transaction,
never a commit.
"""
