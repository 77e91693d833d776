"""The demo bank: a simulated bank with a known causal process (see `process` for the story)."""

from keepwell.demo.generate import TABLES, DemoSummary, generate

__all__ = ["TABLES", "DemoSummary", "generate"]
