"""Keepwell training.effect."""
