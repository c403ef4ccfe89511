"""What an operator does through the console: sign in and out, and, signed in, send a command about the
model (approve, reject, promote, rollback: signed with the console's key) to ``models.commands.v1`` or a
label for a tile to ``labels.feedback.v1``: the only events the console writes.

Each is a POST that WriteGuard (web_security.py) has already checked: from the console's own pages,
JSON, no larger than the limit. A secret never reaches a log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emberwatch.contracts.events import LabelFeedback
from emberwatch.contracts.products import model_name_for
from emberwatch.messaging.broker import publish_event
from emberwatch.operations.send_command import model_command
from emberwatch.security.command_keys import CONSOLE, SigningKeyMissing, load_signer
from emberwatch.security.console_operators import OperatorFileError
from services.console.http_json import error, read_json
from services.console.metrics import CONSOLE_REQUESTS
from services.console.models import CommandRequest, FeedbackRequest, SignInRequest
from services.console.parts import console_of
from services.console.settings import SERVICE
from services.console.signin import COOKIE

M = TypeVar("M")

log = logging.getLogger(__name__)


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    signins = console.signins
    client = request.client.host if request.client else "unknown"
    wait = signins.throttle.retry_after(client)
    if wait is not None:
        CONSOLE_REQUESTS.labels("signin", "throttled").inc()
        return JSONResponse({"error": f"too many failed sign-ins from {client}: try again in {wait} s"},
                            status_code=429, headers={"Retry-After": str(wait)})
    body = await read_json(request, SignInRequest)
    if isinstance(body, Response):
        CONSOLE_REQUESTS.labels("signin", "invalid").inc()
        return body
    if not signins.enabled():
        CONSOLE_REQUESTS.labels("signin", "refused").inc()
        return error(403, "sign-in is disabled: the console has no operators (emberwatch console-operator add NAME)")
    try:
        async with signins.hashing:
            operator = await asyncio.to_thread(signins.authenticate, body.secret)
    except (OSError, OperatorFileError) as exc:
        log.error("the operators file cannot be read", extra={"error": str(exc)})
        return error(503, "the console cannot read its operators file now")
    if operator is None:
        signins.throttle.failed(client)
        CONSOLE_REQUESTS.labels("signin", "refused").inc()
        log.warning("console sign-in refused", extra={"client": client})  # never the secret
        return error(401, "wrong operator secret")
    sid = signins.sessions.start(operator)
    CONSOLE_REQUESTS.labels("signin", "ok").inc()
    log.info("console sign-in", extra={"user": operator, "client": client})
    response = JSONResponse({"user": operator})
    response.set_cookie(COOKIE, sid, max_age=console.settings.console_session_max_age_s, httponly=True,
                        samesite="strict", secure=signins.secure_cookie(request), path="/")
    return response


async def sign_out(request: Request) -> Response:
    signins = console_of(request).signins
    signins.sessions.end(request.cookies.get(COOKIE))
    response = JSONResponse({"user": None})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=signins.secure_cookie(request))
    return response

async def operator_request(request: Request, kind: str, model: type[M], to_do: str) -> tuple[str, M] | Response:
    """The signed-in operator and the validated body of a write, or the answer refusing it (counted)."""
    user = console_of(request).signins.user(request)
    if user is None:
        CONSOLE_REQUESTS.labels(kind, "unauthorized").inc()
        return error(401, f"sign in as an operator to {to_do}")
    body = await read_json(request, model)
    if isinstance(body, Response):
        CONSOLE_REQUESTS.labels(kind, "invalid").inc()
        return body
    return user, body


async def me(request: Request) -> Response:
    console = console_of(request)
    return JSONResponse({"user": console.signins.user(request),
                         "signin_enabled": console.signins.enabled(),
                         "basemap_min_zoom": console.settings.console_basemap_min_zoom})


async def send_command(request: Request) -> Response:
    console = console_of(request)
    asked = await operator_request(request, "command", CommandRequest, "send commands")
    if isinstance(asked, Response):
        return asked
    user, body = asked
    if body.command == "promote" and body.version is None:
        return error(422, "invalid request: version: a promote needs the version to promote")
    settings = console.settings
    try:  # signed with the console's key: it vouches for the operator it signed in
        signer = load_signer(settings, CONSOLE)
    except SigningKeyMissing as exc:
        log.error("the console cannot sign commands", extra={"error": str(exc)})
        return error(503, "the console has no key to sign commands with; see its log")
    model_name = model_name_for(settings.console_model_name, body.product)  # the product line's model
    command = model_command(body.command, model_name, requested_by=f"console:{user}",
                            signer=signer, version=body.version, reason=body.reason,
                            wait_s=settings.console_command_wait_s, producer=SERVICE)
    await publish_event(console.broker, command, service=SERVICE)
    CONSOLE_REQUESTS.labels("command", "ok").inc()
    log.info("console command sent", extra={"command": command.command, "version": command.version,
                                            "command_id": command.event_id, "user": user})
    return JSONResponse({"command_id": command.event_id, "command": command.command, "model_name": model_name,
                         "version": command.version, "requested_by": command.requested_by}, status_code=202)


async def send_feedback(request: Request) -> Response:
    console = console_of(request)
    asked = await operator_request(request, "feedback", FeedbackRequest, "label tiles")
    if isinstance(asked, Response):
        return asked
    user, body = asked
    tile = console.view.tiles.get(body.tile_id)
    if tile is None:
        CONSOLE_REQUESTS.labels("feedback", "unknown_tile").inc()
        return error(404, f"unknown tile id {body.tile_id[:80]!r}: no tiles.ready.v1 event announced it")
    feedback = LabelFeedback.create(producer=SERVICE, tile_id=tile.tile_id, label=body.label,
                                    labelled_by=f"console:{user}", note=body.note,
                                    previous_label=tile.label, trace_id=tile.trace_id)
    await publish_event(console.broker, feedback, service=SERVICE)
    CONSOLE_REQUESTS.labels("feedback", "ok").inc()
    log.info("console feedback sent", extra={"tile_id": tile.tile_id, "label": body.label, "user": user})
    return JSONResponse({"event_id": feedback.event_id, "tile_id": tile.tile_id, "label": body.label},
                        status_code=202)
