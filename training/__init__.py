"""Keepwell training."""
