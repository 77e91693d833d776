"""Keepwell serving.scoring."""
