"""Serialise once, with orjson, into a ready ``Response`` (no response_model re-validation)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def json_response(content: Any, status_code: int = 200) -> JSONBody:
    return JSONBody(content, status_code=status_code)


def no_content() -> Response:
    return Response(status_code=204)
