"""Trades between survivors: fair, two-party, atomic."""
