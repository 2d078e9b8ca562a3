"""vaultd: an evidence vault for body-worn cameras."""

__version__ = "0.1.0"
