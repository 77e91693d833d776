"""Keepwell serving."""
