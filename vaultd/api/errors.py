"""HTTP errors: every ``VaultError`` (and anything unexpected) as one JSON shape::

    {"error": {"code": "access_denied", "message": "...", "hint": "...", "rule": "leader-only"}}

One HTTP request is a task boundary (STYLE §5): anything unexpected is
logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from vaultd.api.models import ErrorOut
from vaultd.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    TooManyAttemptsError,
    UsageError,
    VaultError,
)
from vaultd.i18n import _

log = logging.getLogger(__name__)
_GENERIC = _("the vault could not complete the request; its log has the details")
_HTTP_CODES = {400: "bad_input", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
               413: "body_too_large", 415: "unsupported_media_type"}


def status_of(exc: VaultError) -> int:
    """The HTTP status for a vault error (most specific class first)."""
    for cls, status in ((TooManyAttemptsError, 429), (AuthenticationError, 401), (AccessDeniedError, 403),
                        (NotFoundError, 404), (UsageError, 400), (ConfigError, 400)):
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, *, hint: str | None = None, rule: str | None = None,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "hint": hint, "rule": rule}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def vault_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VaultError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    if status == 429:
        headers["retry-after"] = str(int(getattr(exc, "retry_after_s", 60)))
    if status == 500 and not isinstance(exc, IntegrityError):
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return error_response(500, exc.code, _GENERIC)
    if status == 500:
        log.error("%s %s: integrity failure: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(status, exc.code, exc.message, hint=exc.hint,
                          rule=getattr(exc, "rule", None) or None, headers=headers)


def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
               for e in exc.errors()]  # no "input": it may hold a password
    return error_response(422, "invalid_request", _("the request does not match the API's schema"),
                          hint=_("see /openapi.json"), details=jsonable_encoder(details))


def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), hint=getattr(exc, "hint", None),
                          headers=dict(exc.headers or {}))


class VaultRoute(APIRoute):
    """A route whose unexpected exceptions become a logged, generic 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except (VaultError, HTTPException, RequestValidationError):
                raise
            except Exception:
                log.exception("%s %s failed", request.method, request.url.path)
                return error_response(500, "internal_error", _GENERIC)

        return handler


_DESCRIBED = {
    400: "bad input", 401: "no token, or an unknown, expired or revoked one",
    403: "refused by an access rule (named in error.rule)",
    404: "no such thing, or not visible to the caller", 422: "the request does not match the schema",
    413: "the body is larger than the endpoint takes (body_too_large)",
    429: "too many failed logins; try again later", 500: "internal or integrity error"}


def only(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """These error answers, to document on an operation."""
    return {status: {"model": ErrorOut, "description": _DESCRIBED[status]} for status in statuses}


def responses() -> dict[int | str, dict[str, Any]]:
    """The error answers every authenticated operation may give."""
    return only(400, 401, 403, 404, 413, 422, 500)


def install(app: FastAPI) -> None:
    """The handlers, and an OpenAPI schema that says error bodies are JSON."""
    app.add_exception_handler(VaultError, vault_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _json_errors(plain())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _json_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI files an error model under the route's own media type (a
    download's errors as octet-stream); they are JSON whatever the route."""
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            for status, answer in op.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and "content" in answer:
                    answer["content"] = ref
    return schema
