"""A Discord webhook simulator that speaks the real HTTP API.

* ``POST /api/webhooks/{id}/{token}`` (also under ``/api/v10/``): executes a webhook. With
  ``?wait=true`` it answers 200 with the message object (with an ``id``), without it 204.
* Payload limits are enforced independently of the notifier's own shortening (this module is a
  model of Discord, not of our code): content 2000, 10 embeds, title 256, description 4096,
  25 fields, field name 256, field value 1024, footer 2048, author name 256, username 1-80,
  6000 characters across all embeds; lengths in code points, as Discord counts them. A violation
  answers 400 ``{"code": 50035, "message": "Invalid Form Body", "errors": {...}}``.
* Rate limits per webhook bucket (fixed window, Discord's default for webhooks is 5 per 2 s) with
  ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket`` on every answer, and a 429 with
  ``{"message": "You are being rate limited.", "retry_after": s, "global": false}`` plus
  ``Retry-After``.
* Message components (action rows of buttons) are checked as Discord checks them and kept on the
  message only with ``?with_components=true``, as Discord does.
* Unknown webhook: 404 ``{"code": 10015, "message": "Unknown Webhook"}``; wrong token: 401
  ``{"code": 50027, "message": "Invalid Webhook Token"}``.
* Admin (not part of Discord): ``POST /api/_admin/webhooks`` creates a webhook,
  ``POST /api/_admin/config`` sets the rate limit and error modes (fail the next N requests, or all,
  with a status), ``POST /api/_admin/reset`` forgets posts and counters.
* ``GET /`` shows what was posted (HTML), ``GET /api/_posted`` the same as JSON.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

DISCORD_EPOCH_MS = 1420070400000

MAX = {
    "content": 2000, "embeds": 10, "title": 256, "description": 4096, "fields": 25,
    "field_name": 256, "field_value": 1024, "footer": 2048, "author_name": 256, "total": 6000,
    "username": 80,
}


@dataclass
class Webhook:
    id: str
    token: str
    name: str
    channel_id: str
    window_start: float = 0.0
    used: int = 0


@dataclass
class SimState:
    rate_limit: int = 5
    rate_window_s: float = 2.0
    fail_next: int = 0
    fail_status: int = 500
    fail_all_status: int | None = None
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    posted: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snowflake(self) -> str:
        self.counter += 1
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (self.counter & 0x3FFFFF))

    def add_webhook(self, name: str = "Emberwatch", token: str | None = None,
                    webhook_id: str | None = None) -> Webhook:
        hook = Webhook(id=webhook_id or self.snowflake(), token=token or secrets.token_urlsafe(48),
                       name=name, channel_id=self.snowflake())
        self.webhooks[hook.id] = hook
        return hook


def _error(path_errors: dict[str, Any]) -> dict[str, Any]:
    return {"code": 50035, "message": "Invalid Form Body", "errors": path_errors}


def _too_long(limit: int) -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}


def _required() -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}


def _bad_type(kind: str) -> dict[str, Any]:
    return {"_errors": [{"code": f"{kind.upper()}_TYPE_CONVERT", "message": f"Could not interpret as {kind}."}]}


def _check_text(errors: dict[str, Any], key: str, value: Any, limit: int, *, required: bool = False) -> int:
    """Validate one string; returns its length (0 when absent)."""
    if value is None:
        if required:
            errors[key] = _required()
        return 0
    if not isinstance(value, str):
        errors[key] = _bad_type("string")
        return 0
    if required and not value.strip():
        errors[key] = _required()
    elif len(value) > limit:
        errors[key] = _too_long(limit)
    return len(value)


def validate_payload(payload: Any) -> dict[str, Any] | None:
    """Discord's form-body errors for ``payload``, or None when it is acceptable."""
    if not isinstance(payload, dict):
        return {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]}
    errors: dict[str, Any] = {}
    _check_text(errors, "content", payload.get("content"), MAX["content"])
    if "username" in payload:
        name = payload.get("username")
        if isinstance(name, str) and (not name.strip() or len(name) > MAX["username"]):
            errors["username"] = {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH",
                                               "message": f"Must be between 1 and {MAX['username']} in length."}]}
        elif isinstance(name, str) and ("discord" in name.lower() or "clyde" in name.lower()):
            errors["username"] = {"_errors": [{"code": "USERNAME_INVALID_CONTAINS",
                                               "message": "Username cannot contain \"discord\""}]}
    embeds = payload.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list):
            errors["embeds"] = _bad_type("array")
        elif len(embeds) > MAX["embeds"]:
            errors["embeds"] = _too_long(MAX["embeds"])
        else:
            embed_errors: dict[str, Any] = {}
            total = 0
            for i, embed in enumerate(embeds):
                e: dict[str, Any] = {}
                if not isinstance(embed, dict):
                    embed_errors[str(i)] = _bad_type("dict")
                    continue
                total += _check_text(e, "title", embed.get("title"), MAX["title"])
                total += _check_text(e, "description", embed.get("description"), MAX["description"])
                if "color" in embed and embed["color"] is not None and not (
                        isinstance(embed["color"], int) and 0 <= embed["color"] <= 0xFFFFFF):
                    e["color"] = {"_errors": [{"code": "NUMBER_TYPE_MAX", "message": "int value should be <= 16777215 and >= 0."}]}
                footer = embed.get("footer")
                if footer is not None:
                    fe: dict[str, Any] = {}
                    total += _check_text(fe, "text", (footer or {}).get("text"), MAX["footer"], required=True)
                    if fe:
                        e["footer"] = fe
                author = embed.get("author")
                if author is not None:
                    ae: dict[str, Any] = {}
                    total += _check_text(ae, "name", (author or {}).get("name"), MAX["author_name"], required=True)
                    if ae:
                        e["author"] = ae
                fields = embed.get("fields")
                if fields is not None:
                    if not isinstance(fields, list):
                        e["fields"] = _bad_type("array")
                    elif len(fields) > MAX["fields"]:
                        e["fields"] = _too_long(MAX["fields"])
                    else:
                        field_errors: dict[str, Any] = {}
                        for j, f in enumerate(fields):
                            fe2: dict[str, Any] = {}
                            f = f if isinstance(f, dict) else {}
                            total += _check_text(fe2, "name", f.get("name"), MAX["field_name"], required=True)
                            total += _check_text(fe2, "value", f.get("value"), MAX["field_value"], required=True)
                            if fe2:
                                field_errors[str(j)] = fe2
                        if field_errors:
                            e["fields"] = field_errors
                if e:
                    embed_errors[str(i)] = e
            if embed_errors:
                errors["embeds"] = embed_errors
            elif total > MAX["total"]:
                errors["embeds"] = {"_errors": [{"code": "MAX_EMBED_SIZE_EXCEEDED",
                                                 "message": f"Embed size exceeds maximum size of {MAX['total']}"}]}
    components = payload.get("components")
    if components is not None:
        component_errors = _check_components(components)
        if component_errors:
            errors["components"] = component_errors
    if not errors and not payload.get("content") and not payload.get("embeds") \
            and not payload.get("components") and not payload.get("attachments"):
        return {"__empty__": True}
    return errors or None


def _check_components(rows: Any) -> dict[str, Any] | None:
    """Action rows of buttons, as Discord checks them: at most 5 rows of 1-5 buttons, a label of at
    most 80, a custom_id of 1-100 characters (unique in the message) on every non-link button."""
    if not isinstance(rows, list):
        return _bad_type("array")
    if len(rows) > 5:
        return _too_long(5)
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("type") != 1 or not isinstance(row.get("components"), list):
            errors[str(i)] = {"_errors": [{"code": "COMPONENT_LAYOUT_INVALID", "message": "Expected an action row."}]}
            continue
        buttons = row["components"]
        if not 1 <= len(buttons) <= 5:
            errors[str(i)] = {"components": {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH",
                                                          "message": "Must be between 1 and 5 in length."}]}}
            continue
        for j, b in enumerate(buttons):
            b = b if isinstance(b, dict) else {}
            problem = None
            if b.get("type") != 2 or b.get("style") not in (1, 2, 3, 4, 5):
                problem = "Expected a button with a style of 1 to 5."
            elif len(str(b.get("label", ""))) > 80:
                problem = "label: Must be 80 or fewer in length."
            elif b["style"] != 5:
                cid = b.get("custom_id")
                if not isinstance(cid, str) or not 1 <= len(cid) <= 100:
                    problem = "custom_id: Must be between 1 and 100 in length."
                elif cid in seen:
                    problem = "custom_id: Component custom id cannot be duplicated."
                else:
                    seen.add(cid)
            if problem:
                errors.setdefault(str(i), {}).setdefault("components", {})[str(j)] = {
                    "_errors": [{"code": "COMPONENT_INVALID", "message": problem}]}
    return errors or None


def build_app(state: SimState | None = None) -> Starlette:
    """The simulator as an ASGI app; ``app.state.sim`` holds its state (webhooks, posts, modes)."""
    sim = state or SimState()

    def rate_headers(hook: Webhook, now: float) -> dict[str, str]:
        reset_at = hook.window_start + sim.rate_window_s
        remaining = max(0, sim.rate_limit - hook.used)
        bucket = hashlib.sha1(f"webhook:{hook.id}".encode()).hexdigest()[:32]
        return {
            "X-RateLimit-Limit": str(sim.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + (reset_at - now):.3f}",
            "X-RateLimit-Reset-After": f"{max(0.0, reset_at - now):.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    async def execute(request: Request) -> Response:
        webhook_id = request.path_params["webhook_id"]
        token = request.path_params["token"]
        body = await request.body()
        with sim.lock:
            sim.requests += 1
            hook = sim.webhooks.get(webhook_id)
            if hook is None:
                return JSONResponse({"message": "Unknown Webhook", "code": 10015}, status_code=404)
            if not secrets.compare_digest(hook.token, token):
                return JSONResponse({"message": "Invalid Webhook Token", "code": 50027}, status_code=401)
            now = time.monotonic()
            if now >= hook.window_start + sim.rate_window_s:
                hook.window_start, hook.used = now, 0
            if hook.used >= sim.rate_limit:
                retry_after = round(max(0.001, hook.window_start + sim.rate_window_s - now), 3)
                headers = rate_headers(hook, now)
                headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
                headers["X-RateLimit-Scope"] = "user"
                return JSONResponse({"message": "You are being rate limited.", "retry_after": retry_after,
                                     "global": False}, status_code=429, headers=headers)
            hook.used += 1
            headers = rate_headers(hook, now)
            if sim.fail_all_status or sim.fail_next > 0:
                status = sim.fail_all_status or sim.fail_status
                if not sim.fail_all_status:
                    sim.fail_next -= 1
                return JSONResponse({"message": "Internal Server Error", "code": 0},
                                    status_code=status, headers=headers)
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                return JSONResponse({"message": "The request body contains invalid JSON.", "code": 50109},
                                    status_code=400, headers=headers)
            problems = validate_payload(payload)
            if problems == {"__empty__": True}:
                return JSONResponse({"message": "Cannot send an empty message", "code": 50006},
                                    status_code=400, headers=headers)
            if problems:
                return JSONResponse(_error(problems), status_code=400, headers=headers)
            message = {
                "id": sim.snowflake(),
                "type": 0,
                "content": payload.get("content") or "",
                "channel_id": hook.channel_id,
                "author": {"id": hook.id, "username": payload.get("username") or hook.name,
                           "avatar": None, "discriminator": "0000", "bot": True},
                "attachments": [],
                "embeds": [dict(e, type="rich") for e in payload.get("embeds") or []],
                "mentions": [],
                "mention_roles": [],
                "pinned": False,
                "mention_everyone": False,
                "tts": bool(payload.get("tts", False)),
                "timestamp": datetime.now(UTC).isoformat(),
                "edited_timestamp": None,
                "flags": int(payload.get("flags") or 0),
                # Components are kept only with ?with_components=true (Discord ignores them otherwise).
                "components": (payload.get("components") or []) if request.query_params.get(
                    "with_components", "false").lower() in ("true", "1") else [],
                "webhook_id": hook.id,
            }
            sim.posted.append({"webhook_id": hook.id, "message": message})
        wait = request.query_params.get("wait", "false").lower() in ("true", "1")
        if wait:
            return JSONResponse(message, headers=headers)
        return Response(status_code=204, headers=headers)

    async def get_webhook(request: Request) -> Response:
        hook = sim.webhooks.get(request.path_params["webhook_id"])
        if hook is None:
            return JSONResponse({"message": "Unknown Webhook", "code": 10015}, status_code=404)
        if not secrets.compare_digest(hook.token, request.path_params["token"]):
            return JSONResponse({"message": "Invalid Webhook Token", "code": 50027}, status_code=401)
        return JSONResponse({"id": hook.id, "type": 1, "name": hook.name, "channel_id": hook.channel_id,
                             "token": hook.token, "avatar": None})

    async def admin_webhooks(request: Request) -> Response:
        data = await _json(request)
        with sim.lock:
            hook = sim.add_webhook(name=str(data.get("name") or "Emberwatch"), token=data.get("token"),
                                   webhook_id=data.get("id"))
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"id": hook.id, "token": hook.token, "name": hook.name,
                             "url": f"{base}/api/webhooks/{hook.id}/{hook.token}"}, status_code=201)

    async def admin_config(request: Request) -> Response:
        data = await _json(request)
        with sim.lock:
            if "rate_limit" in data:
                sim.rate_limit = int(data["rate_limit"])
            if "rate_window_s" in data:
                sim.rate_window_s = float(data["rate_window_s"])
            if "fail_next" in data:
                sim.fail_next = int(data["fail_next"])
            if "fail_status" in data:
                sim.fail_status = int(data["fail_status"])
            if "fail_all_status" in data:
                sim.fail_all_status = int(data["fail_all_status"]) if data["fail_all_status"] else None
            for hook in sim.webhooks.values():
                hook.window_start, hook.used = 0.0, 0
            config = {"rate_limit": sim.rate_limit, "rate_window_s": sim.rate_window_s,
                      "fail_next": sim.fail_next, "fail_status": sim.fail_status,
                      "fail_all_status": sim.fail_all_status}
        return JSONResponse(config)

    async def admin_reset(request: Request) -> Response:
        with sim.lock:
            sim.posted.clear()
            sim.requests = 0
            sim.fail_next, sim.fail_all_status = 0, None
            for hook in sim.webhooks.values():
                hook.window_start, hook.used = 0.0, 0
        return Response(status_code=204)

    async def posted(request: Request) -> Response:
        webhook_id = request.query_params.get("webhook_id")
        with sim.lock:
            items = [p for p in sim.posted if not webhook_id or p["webhook_id"] == webhook_id]
            return JSONResponse({"count": len(items), "requests": sim.requests,
                                 "messages": [p["message"] for p in items]})

    async def page(request: Request) -> Response:
        with sim.lock:
            items = list(reversed(sim.posted))
        rows = []
        for p in items:
            m = p["message"]
            embeds = []
            for e in m["embeds"]:
                colour = f"#{int(e.get('color') or 0):06x}"
                fields = "".join(
                    f"<dt>{html.escape(str(f.get('name', '')))}</dt><dd>{html.escape(str(f.get('value', '')))}</dd>"
                    for f in e.get("fields") or [])
                footer = html.escape(str((e.get("footer") or {}).get("text", "")))
                embeds.append(
                    f'<div class="embed" style="border-left:4px solid {colour}">'
                    f"<b>{html.escape(str(e.get('title', '')))}</b>"
                    f"<p>{html.escape(str(e.get('description', '')))}</p><dl>{fields}</dl>"
                    f"<small>{footer}</small></div>")
            rows.append(
                f'<div class="msg"><span class="who">{html.escape(m["author"]["username"])}</span> '
                f'<span class="when">{html.escape(m["timestamp"])}</span> <code>{m["id"]}</code>'
                f"<p>{html.escape(m['content'])}</p>{''.join(embeds)}{_buttons(m)}</div>")
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='5'>"
            "<title>Discord simulator</title><style>body{font-family:sans-serif;background:#313338;"
            "color:#dbdee1;max-width:60em;margin:auto}.msg{margin:1em 0}.embed{background:#2b2d31;"
            "padding:.5em 1em;margin:.3em 0}.who{font-weight:bold;color:#fff}.when{color:#949ba4}"
            "dt{font-weight:bold}</style></head><body>"
            f"<h1>Discord simulator</h1><p>{len(items)} messages posted, {sim.requests} requests</p>"
            + "".join(rows) + "</body></html>")
        return HTMLResponse(body)

    routes = []
    for prefix in ("/api", "/api/v10", "/api/v9"):
        routes.append(Route(prefix + "/webhooks/{webhook_id}/{token}", execute, methods=["POST"]))
        routes.append(Route(prefix + "/webhooks/{webhook_id}/{token}", get_webhook, methods=["GET"]))
    routes += [
        Route("/api/_admin/webhooks", admin_webhooks, methods=["POST"]),
        Route("/api/_admin/config", admin_config, methods=["POST"]),
        Route("/api/_admin/reset", admin_reset, methods=["POST"]),
        Route("/api/_posted", posted, methods=["GET"]),
        Route("/", page, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app


def _buttons(message: dict[str, Any]) -> str:
    labels = [b.get("label", "") for row in message.get("components") or [] for b in row.get("components") or []]
    return "".join(f"<button disabled>{html.escape(str(label))}</button> " for label in labels)


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    data = json.loads(body)
    return data if isinstance(data, dict) else {}
