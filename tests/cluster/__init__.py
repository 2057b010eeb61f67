"""The cluster test: nginx in front of three gunicorn replicas sharing one PostgreSQL and one Redis."""
