"""Keepwell core: configuration, the data contract, the workspace and the demo bank."""

__version__ = "0.1.0"
