"""Headers every HTTP response carries, whatever route or refusal produced it.

`X-Content-Type-Options: nosniff` stops a browser from reading a JSON answer (which may echo
client text) as HTML or script. `Strict-Transport-Security` is sent only on responses served over
https: on plain http a browser ignores it, and on a development machine it would pin `localhost`
to https for a year. Behind a TLS-terminating proxy the scheme is https when the proxy is trusted
(FORWARDED_ALLOW_IPS) and says so in `X-Forwarded-Proto`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")
HSTS_HEADER = b"strict-transport-security"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, hsts_seconds: int = 31_536_000) -> None:
        self.app = app
        self.hsts = (HSTS_HEADER, f"max-age={hsts_seconds}".encode("latin-1"))
        self.hsts_on = hsts_seconds > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [NOSNIFF]
        if scope.get("scheme") == "https" and self.hsts_on:
            extra.append(self.hsts)
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() not in names]
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
