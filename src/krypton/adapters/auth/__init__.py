"""Dashboard sign-in: password hashing (`passwords.py`, Argon2id) and access tokens
(`tokens.py`, HS256 JWTs)."""
