"""Infection reports: a survivor is flagged once enough distinct survivors report them."""
