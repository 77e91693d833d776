"""Keepwell reporting.simulation."""
