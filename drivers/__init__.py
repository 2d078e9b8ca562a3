"""Camera drivers shipped with vaultd, found through the ``vaultd.drivers`` entry points."""
