"""Robots reported by the Robot CPU system: a hardened client, a stored last good copy, a snapshot."""
