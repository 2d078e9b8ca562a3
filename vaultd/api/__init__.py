"""The HTTP API (FastAPI): ``create_app(vault)`` and ``serve(vault, listen)``."""

from vaultd.api.app import create_app, serve

__all__ = ["create_app", "serve"]
