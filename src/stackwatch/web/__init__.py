"""The dashboard: Jinja2 templates and vendored static files (no CDN), rendered by the
routes in stackwatch.api.routes. Charts are server-side SVG (web/charts.py)."""
