"""Queries live here and only here."""
