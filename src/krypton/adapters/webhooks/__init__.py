"""Webhook delivery: URL and address checks against SSRF, and the HTTP sender."""
