"""REST API under /v1: thin routers over services."""
