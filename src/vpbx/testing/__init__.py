"""Helpers for testing against vpbx: an in-process server on loopback, tenants with known keys."""
