"""Parameters as Mastodon apps send them, and Mastodon's error bodies.

Apps send a query string (GET), an urlencoded or multipart form, or JSON; arrays
as ``name[]`` (forms) or JSON lists. Every body is bounded before it is parsed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from node.core.jsonsafe import JsonError, parse_object
from node.federation.inbox import BodyTooLarge, read_body

MAX_BODY = 256 * 1024  # forms and JSON without a file
MAX_UPLOAD_BODY = 12 * 1024 * 1024  # a multipart form with one image


class ApiError(Exception):
    """An answer with Mastodon's error body ``{"error": "…"}``."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


NOT_FOUND = "Record not found"


class Params:
    """One request's parameters, query and body merged (the body wins)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def text(self, name: str, *, limit: int = 100_000) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool | int | float):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if not isinstance(value, str):  # a JSON list or object where text belongs
            raise ApiError(f"Validation failed: {name} must be text")
        if len(value) > limit:
            raise ApiError(f"Validation failed: {name} is too long")
        return value

    def items(self, name: str, *, limit: int = 40) -> list[str]:
        value = self.values.get(f"{name}[]", self.values.get(name))
        if value is None or value == "":
            return []
        values = value if isinstance(value, list) else [value]
        if len(values) > limit:
            raise ApiError(f"Validation failed: too many {name}")
        out = []
        for item in values:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or len(item) > 2048:
                raise ApiError(f"Validation failed: {name} must be a list of text")
            out.append(item)
        return out

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"1", "true", "on", "yes"}

    def number(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.text(name, limit=20)
        if value is None or value == "":
            return default
        try:
            return max(low, min(high, int(value)))
        except ValueError as exc:
            raise ApiError(f"Validation failed: {name} must be a number", 400) from exc

    def file(self, name: str) -> UploadFile | None:
        value = self.values.get(name)
        return value if isinstance(value, UploadFile) else None


def _merge(pairs: list[tuple[str, Any]], into: dict[str, Any]) -> None:
    for key, value in pairs:
        if key.endswith("[]"):
            into.setdefault(key, [])
            if isinstance(into[key], list):
                into[key].append(value)
        else:
            into[key] = value


async def read_params(request: Request, *, uploads: bool = False) -> Params:
    """Query, then body. ApiError 413 for an oversized body, 400 for a broken one."""
    values: dict[str, Any] = {}
    _merge(list(request.query_params.multi_items()), values)
    if request.method not in {"POST", "PUT", "PATCH", "DELETE"}:
        return Params(values)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        limit = MAX_UPLOAD_BODY if uploads else MAX_BODY
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > limit:
            raise ApiError(f"a form must say its length and be at most {limit} bytes", 413)
        try:
            form = await request.form(max_files=1 if uploads else 0, max_fields=100,
                                      max_part_size=64 * 1024)
        except Exception as exc:  # Starlette's MultiPartException and parser errors
            raise ApiError(f"unreadable form: {exc}", 400) from exc
        _merge(list(form.multi_items()), values)
        return Params(values)
    try:
        raw = await read_body(request, MAX_BODY)
    except BodyTooLarge as exc:
        raise ApiError(f"body over {MAX_BODY} bytes", 413) from exc
    if not raw.strip():
        return Params(values)
    if kind == "application/json":
        try:
            body = parse_object(raw)
        except JsonError as exc:
            raise ApiError(str(exc), 400) from exc
        for key, value in body.items():
            values[key] = value
        return Params(values)
    _merge(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True), values)
    return Params(values)
