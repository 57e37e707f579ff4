"""Rows in, file bytes out: pure writers for the report formats (no database, no storage)."""
