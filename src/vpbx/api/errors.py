"""The one place errors are shaped: 002 §3.3 codes with a JSON ``message``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vpbx.api.responses import json_response
from vpbx.schemas.common import Message, ValidationErrorOut
from vpbx.services.errors import Forbidden, Invalid, NotFound

log = logging.getLogger("vpbx.api")

VALIDATION_ERROR = "Validation error"
INVALID_TOKEN = "Invalid token"
CRM_DISABLED = "CRM disabled"
CRM_SWITCHED_OFF = "CRM switched off"
FORBIDDEN = "Don't have permission to access"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method Not Allowed"
TOO_LARGE = "Request entity too large"

_STATUS_MESSAGES = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: TOO_LARGE}

# The 002 §3.3 answers every v1 operation may give, for the OpenAPI document: ``APIRouter(responses=...)``.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorOut, "description": VALIDATION_ERROR},
    401: {"model": Message, "description": f"{INVALID_TOKEN}, {CRM_DISABLED} or {CRM_SWITCHED_OFF}"},
    403: {"model": Message, "description": FORBIDDEN},
    404: {"model": Message, "description": NOT_FOUND},
}


class FieldError(dict[str, str]):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def validation_error(field: str, message: str) -> ApiError:
    return ApiError(400, VALIDATION_ERROR, [FieldError(field, message)])


def invalid(errors: list[FieldError]) -> ApiError:
    return ApiError(400, VALIDATION_ERROR, errors)


def not_found(what: str = NOT_FOUND) -> ApiError:
    return ApiError(404, what)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def pydantic_errors(errors: Any) -> list[FieldError]:
    out = []
    for err in errors:
        msg = err.get("msg", "invalid")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err.get("type") == "json_invalid":  # loc is ("body", <offset>): the body as a whole is bad
            out.append(FieldError("body", msg))
            continue
        out.append(FieldError(_field_path(tuple(err.get("loc", ()))), msg))
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.exception_handler(Invalid)
    async def _invalid(_: Request, exc: Invalid) -> Response:
        return json_response(validation_error(exc.field, exc.message).body(), 400)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> Response:
        return json_response({"message": NOT_FOUND}, 404)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> Response:
        return json_response({"message": FORBIDDEN}, 403)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return json_response({"message": VALIDATION_ERROR, "errors": pydantic_errors(exc.errors())}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        message = _STATUS_MESSAGES.get(exc.status_code) or str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 400:  # e.g. a body that is not UTF-8: still 002's 400 shape
            resp = json_response(invalid([FieldError("body", str(exc.detail))]).body(), 400)
        else:
            resp = json_response({"message": message}, exc.status_code)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return json_response({"message": "Internal error"}, 500)
