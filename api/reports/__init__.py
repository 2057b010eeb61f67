"""Reports: aggregates computed by the database."""
