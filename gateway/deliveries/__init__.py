"""Scheduled data deliveries: surveillance, statistics and research extracts (see README)."""
