"""Keepwell reporting."""
