"""HTTP interface: the REST API under /api/v1 (and, later, checkout and dashboard pages)."""
