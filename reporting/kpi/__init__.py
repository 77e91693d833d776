"""Keepwell reporting.kpi."""
