"""The one place errors are shaped: 002 §3.3 codes with a JSON ``message``."""

from __future__ import annotations

import logging
import re
from copy import deepcopy
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from vpbx.api.responses import json_response
from vpbx.schemas.common import FieldErrorOut, Message, ValidationErrorOut
from vpbx.services.errors import Forbidden, Invalid, NotFound
from vpbx.store.paging import MAX_ID

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

# The 002 §3.3 answers every v1 operation may give, for the OpenAPI document: ``APIRouter(responses=...)``. In
# words only: ``document`` gives each its body's schema (400: ValidationErrorOut, else Message). A "model" here
# would cost every route a pydantic adapter when it is built (~800 of them: a tenth of the server's start).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": VALIDATION_ERROR},
    401: {"description": f"{INVALID_TOKEN}, {CRM_DISABLED} or {CRM_SWITCHED_OFF}"},
    403: {"description": FORBIDDEN},
    404: {"description": NOT_FOUND},
}
# The simulator answers in the same format, and 409 when the state of a call (or of the server) refuses the step.
SIM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"description": "The call (or the server) is not in a state that allows it"},
}


class FieldError(dict[str, str]):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


# ``"field: what is wrong"``, the way the engine and the simulator word a refused input.
_FIELD_MESSAGE = re.compile(r"(?P<field>[A-Za-z_][\w.\[\]]*): (?P<message>.+)", re.S)


def _as_field_errors(message: str) -> list[FieldError]:
    match = _FIELD_MESSAGE.fullmatch(message)
    if match is None:
        return [FieldError("body", message)]
    return [FieldError(match["field"], match["message"])]


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[FieldError] | None = None) -> None:
        if status == 400 and not errors:  # every 400 is 002's: ``Validation error`` naming the field
            message, errors = VALIDATION_ERROR, _as_field_errors(message)
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


def _conflict_field(exc: IntegrityError) -> str:
    """The column a unique (or other) constraint names, for the 400's ``field``; ``body`` when unknown.

    SQLite: ``UNIQUE constraint failed: users.domain_id, users.login``; PostgreSQL (asyncpg's detail):
    ``Key (domain_id, login)=(1, ivan) already exists.``. The last column is the one the client chose
    (the first ones scope it to the domain)."""
    text = str(exc.orig)
    detail = getattr(exc.orig, "detail", None) or getattr(getattr(exc.orig, "__cause__", None), "detail", None)
    if isinstance(detail, str):
        text = detail + "\n" + text
    match = re.search(r"Key \(([^)]*)\)", text) or re.search(r"constraint failed: ([\w., ]+)", text)
    if match is None:
        return "body"
    column = match.group(1).split(",")[-1].strip()
    return column.rsplit(".", 1)[-1] or "body"


def _out_of_range(exc: BaseException) -> bool:
    """A driver's refusal of a value as input (too large a number, ...), anywhere in the exception's causes."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, OverflowError) or type(seen).__name__ == "DataError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _too_large_field(request: Request) -> str:
    """The path or query parameter holding a number no stored id reaches (the usual culprit), else ``body``."""
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        text = str(value).strip().lstrip("+-")
        if text.isdigit() and len(text) > 9 and int(text) > MAX_ID:
            return str(name)
    return "body"


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Every answer an operation can give is in its ``responses`` with its body's schema.

    FastAPI documents 422 for every validated operation; vpbx answers 400 (002 §3.3) instead. Any operation
    can answer 400 (an unreadable request), 413 (``middleware.BodyLimit`` reads every request) and 429
    (``ratelimit.RateLimit`` sees every request)."""
    body_400 = {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}}
    message = {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}
    too_many = {"description": "Too many requests: failed authentications from this address, or the key's "
                               "request budget (api.ratelimit)", "content": message,
                "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            invalid = responses.pop("422", None)
            if invalid is not None or "400" not in responses:
                responses.setdefault("400", {"description": VALIDATION_ERROR, "content": deepcopy(body_400)})
            responses.setdefault("413", {"description": TOO_LARGE, "content": deepcopy(message)})
            responses.setdefault("429", deepcopy(too_many))
            for status, answer in responses.items():  # an error described in words only: its body is still ours
                if status[:1] in ("4", "5") and not answer.get("content"):
                    answer["content"] = deepcopy(body_400 if status == "400" else message)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components.setdefault("Message", Message.model_json_schema())
    components.setdefault("FieldErrorOut", FieldErrorOut.model_json_schema())
    components.setdefault("ValidationErrorOut", ValidationErrorOut.model_json_schema(
        ref_template="#/components/schemas/{model}"))
    components["ValidationErrorOut"].pop("$defs", None)
    return schema


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

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> Response:
        # Two writers raced for the same unique value (the loser's check-then-insert saw it free): the
        # database refused the second; the request's session rolls back as it closes.
        log.info("constraint refused a write: %s", type(exc.orig).__name__)
        return json_response(validation_error(_conflict_field(exc), "already exists").body(), 400)

    @app.exception_handler(DBAPIError)
    async def _store_refused(request: Request, exc: DBAPIError) -> Response:
        if not _out_of_range(exc):
            return await _unexpected(request, exc)
        # A value the store cannot hold (asyncpg: an integer beyond the column's 32 or 64 bits): bad input.
        log.info("store refused a value: %s", exc.orig)
        return json_response(validation_error(_too_large_field(request), "a number is out of range").body(), 400)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        # SQLite's driver refuses integers beyond 64 bits before the query runs.
        return json_response(validation_error(_too_large_field(request), "a number is out of range").body(), 400)

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
