"""JSON in and out of the console's routes: an error answer, and a request body read against its model."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

M = TypeVar("M", bound=BaseModel)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_json(request: Request, model: type[M]) -> M | JSONResponse:
    """The body as ``model``, or the answer that says why it is not one (400, 422)."""
    try:  # WriteGuard has checked the origin and the type and read at most the limit
        raw = await request.body()
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return error(400, "the body is not JSON")
    if not isinstance(data, dict):
        return error(400, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        return error(422, f"invalid request: {problems}")
