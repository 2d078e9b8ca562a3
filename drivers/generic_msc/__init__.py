"""Generic USB mass-storage cameras, enabled per model by config (see README.md)."""
