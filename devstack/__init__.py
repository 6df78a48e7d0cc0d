"""Local development stack helpers (services for dev runs and tests)."""
