"""Headers on every answer of the API (issue 16 #13).

* ``X-Content-Type-Options: nosniff``: a browser never guesses a type other
  than the one given (an original sent as octet-stream is never run as HTML).
* ``Cache-Control: no-store`` unless the answer sets its own: the API's JSON
  carries evidence metadata, names, audit entries and bearer tokens, none of
  which a browser or a proxy may keep. (Originals and previews set it themselves.)
* ``X-Vaultd-Station-Zone: Asia/Shanghai``: the station's zone, so a client at
  another PC shows times the way the station does (``vaultd --url ...``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
ZONE_HEADER = b"x-vaultd-station-zone"


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer."""

    def __init__(self, app: ASGIApp, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.app = app
        self.extra = extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _NOSNIFF[0]]
                headers.append(_NOSNIFF)
                if not any(k.lower() == _NO_STORE[0] for k, _v in headers):
                    headers.append(_NO_STORE)
                headers.extend(self.extra)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
