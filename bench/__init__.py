"""The benchmark: the API under gunicorn against a bare-Flask ceiling, and a scale run (README: bench)."""
