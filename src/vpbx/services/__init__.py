"""Business operations shared by REST v1, the legacy API, the CLI and the console.
Services never commit: the request (or CLI command) that called them does."""
