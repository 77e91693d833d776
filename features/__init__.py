"""Keepwell features."""
