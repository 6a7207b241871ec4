"""Persistence: tables, repositories and migrations."""
