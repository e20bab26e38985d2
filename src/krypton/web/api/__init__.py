"""REST API v1 routers and schemas."""
