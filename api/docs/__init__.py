"""The /docs page: Swagger UI from bundled static files, no CDN, works offline."""
