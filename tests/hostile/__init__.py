"""A corpus of hostile inputs, generated in code (never committed as binaries): each gets a clear 4xx with a
stable code, bounded memory and no state change. See each module."""
