"""Exchange-rate sources."""
