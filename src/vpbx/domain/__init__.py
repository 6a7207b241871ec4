"""Pure domain rules: no I/O, no database, no web."""
