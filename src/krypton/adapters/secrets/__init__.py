"""Secrets kept at rest in the database, sealed with AES-256-GCM under keys held outside it
(`envelope.py`): the key ring, its configuration value and its key file."""
