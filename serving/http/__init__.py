"""Keepwell serving.http."""
