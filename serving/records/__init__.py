"""Keepwell serving.records."""
