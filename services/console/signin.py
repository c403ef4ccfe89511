"""Who may sign in to the console and who is signed in: named operators (the operators file), else the
legacy shared token; sessions and the throttle on failed sign-ins are in sessions.py."""

from __future__ import annotations

import asyncio
import hmac
import logging

from starlette.requests import Request

from emberwatch.security.console_operators import OperatorFileError, OperatorRegistry
from services.console.sessions import Sessions, SignInThrottle
from services.console.settings import LEGACY_OPERATOR, ConsoleSettings

log = logging.getLogger(__name__)

COOKIE = "emberwatch_console"  # the session id: HttpOnly, SameSite=Strict, Secure behind https


class SignIns:
    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.operators = OperatorRegistry(settings.operators_path)
        self.sessions = Sessions(settings.console_session_max_age_s, self.may_act)
        self.throttle = SignInThrottle(settings.console_signin_failures_per_minute)
        self.hashing = asyncio.Semaphore(2)  # scrypt takes 16 MiB and a core for ~50 ms

    def may_act(self, operator: str) -> bool:
        """A session's operator may still act: still in the operators file (or the legacy token still set)."""
        if operator == LEGACY_OPERATOR:
            return self.legacy_token() is not None
        try:
            return self.operators.exists(operator)
        except (OSError, OperatorFileError) as exc:
            log.error("the operators file cannot be read: nobody may act", extra={"error": str(exc)})
            return False

    def legacy_token(self) -> bytes | None:
        token = self.settings.console_operator_token
        return token.get_secret_value().encode() if token is not None and token.get_secret_value() else None

    def enabled(self) -> bool:
        try:
            return self.legacy_token() is not None or bool(self.operators.names())
        except (OSError, OperatorFileError):
            return False

    def user(self, request: Request) -> str | None:
        """The operator signed in on this request's session cookie, if any."""
        return self.sessions.operator(request.cookies.get(COOKIE))

    def authenticate(self, secret: str) -> str | None:
        """The operator this secret belongs to: a named operator's, else (legacy) the shared token's."""
        operator = self.operators.authenticate(secret)
        if operator is None and (legacy := self.legacy_token()) is not None \
                and hmac.compare_digest(secret.encode(), legacy):
            operator = LEGACY_OPERATOR
        return operator

    def secure_cookie(self, request: Request) -> bool:
        public = self.settings.console_public_url
        return (public or str(request.url)).startswith("https://")
