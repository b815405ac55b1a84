"""A corpus of hostile inputs: each gets a clear 4xx with a stable code, bounded memory and no state change."""
