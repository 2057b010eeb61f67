"""Survivors and their inventories."""
