"""The gateway's ASGI entry: the relayed routes go straight to `Gateway.handle`, everything else (health, unknown
routes, the lifespan) to the Starlette app behind it. Starlette's router and its two middlewares cost more per call
than the rest of a relayed request's own Python; a dictionary lookup does the same routing here."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.routes import ROUTES, error_body

log = logging.getLogger(__name__)


class Front:
    def __init__(self, app: ASGIApp, gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope.get("path", "")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route_info"] = route
        try:
            response = await self.gateway.handle(Request(scope, receive))
        except Exception:  # a bug of ours: the client still gets its provider's error shape, and the log the trace
            log.exception("gateway: unexpected error on %s", route.path)
            response = JSONResponse(error_body(route.provider, 500, "the gateway failed on this request; see its log"),
                                    status_code=500)
        await response(scope, receive, send)
