"""Keepwell cli."""
