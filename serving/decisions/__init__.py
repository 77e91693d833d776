"""Keepwell serving.decisions."""
