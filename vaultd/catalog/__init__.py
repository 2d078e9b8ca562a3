"""The SQL catalog: what is in the vault, where it came from, what happened."""
