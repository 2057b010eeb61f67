"""Accounts and roles."""
