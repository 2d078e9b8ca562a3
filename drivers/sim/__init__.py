"""The simulated dock's camera (see README.md)."""
