"""Keepwell serving.planning."""
