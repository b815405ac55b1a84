"""Hostile inputs, generated in code (never committed as binaries), for tests that feed the API what an attacker
would: see each module."""
