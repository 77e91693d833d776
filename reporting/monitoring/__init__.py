"""Keepwell reporting.monitoring."""
