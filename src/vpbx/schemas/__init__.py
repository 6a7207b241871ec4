"""Request and response models of REST v1: one source for the server, its OpenAPI and the SDK."""
