"""Operator commands signed with Ed25519, and their verification (docs/security.md, "Operator commands
are signed").

A ``ModelCommand`` carries ``issuer`` (whose key signed it) and ``signature`` (base64) over its
canonical content: every field that decides what happens and for whom (command, model_name, version,
requested_by, reason, issuer, event_id, occurred_at, expires_at), as sorted, compact JSON after a
fixed prefix, so a change to any of them, or a signature moved to another kind of message, does not
verify. Issuers are either a service that vouches for the person it names in ``requested_by``
(``console`` for ``console:<operator>``, ``discord-bot`` for ``discord:<user>``) or a person
(``operator:alice``), whose key may only speak for ``<channel>:alice``.

This module is pure: keys in, verdicts out. Key files live in ``command_keys.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emberwatch.contracts.events import ModelCommand

# What the signature covers; the prefix keeps a command's signature from meaning anything else.
SIGNED_FIELDS = ("command", "model_name", "version", "requested_by", "reason", "issuer", "event_id",
                 "occurred_at", "expires_at")
_PREFIX = b"emberwatch models.commands.v1 signature\n"
# A person's issuer (operator:<name>) or a service's (console, discord-bot): the contract's pattern.
PERSON_PREFIX = "operator:"
ISSUER = re.compile(r"(operator:[A-Za-z0-9][A-Za-z0-9._-]{0,63}|[a-z][a-z0-9-]{0,39})")
# The channel each service names its people under in requested_by (any other service: its own name).
SERVICE_CHANNELS = {"discord-bot": "discord"}

RefusalReason = Literal["unsigned", "unknown_issuer", "bad_signature", "impersonation"]


class Unverified(Exception):
    """A command whose signature does not stand; ``reason`` is a short label (metrics), the message
    says why in words."""

    def __init__(self, reason: RefusalReason, message: str):
        super().__init__(message)
        self.reason = reason


def check_issuer(issuer: str) -> str:
    """``issuer`` if it is a well-formed issuer name, else ValueError saying what one looks like."""
    if not isinstance(issuer, str) or not ISSUER.fullmatch(issuer) or issuer == "operator":
        raise ValueError(f"{str(issuer)[:80]!r} is not an issuer name: operator:<name> for a person (letters, "
                         "digits, . _ -), or a service's name (lower-case letters, digits, -)")
    return issuer


def person_of(issuer: str) -> str | None:
    """The person a personal issuer names (``operator:alice`` -> ``alice``); None for a service."""
    return issuer[len(PERSON_PREFIX):] if issuer.startswith(PERSON_PREFIX) else None


def may_speak_for(issuer: str, requested_by: str) -> bool:
    """Whether ``issuer``'s key may name ``requested_by`` as who asks: a person only themselves
    (``<channel>:<their name>``), a service only people of its own channel (``console:*``, ``discord:*``)."""
    channel, sep, who = requested_by.partition(":")
    if not sep or not channel or not who:
        return False
    person = person_of(issuer)
    if person is not None:
        return who == person
    return channel == SERVICE_CHANNELS.get(issuer, issuer)


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_content(command: ModelCommand) -> bytes:
    """The bytes a command's signature covers."""
    content = {name: getattr(command, name) for name in SIGNED_FIELDS}
    content["occurred_at"] = _instant(command.occurred_at)
    content["expires_at"] = _instant(command.expires_at)
    return _PREFIX + json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class CommandSigner:
    """One issuer's private key: signs the commands it issues."""

    issuer: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_issuer(self.issuer)
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise TypeError("a command signer needs an Ed25519 private key")

    def __repr__(self) -> str:  # never the key
        return f"CommandSigner(issuer={self.issuer!r})"

    def sign(self, command: ModelCommand) -> ModelCommand:
        """``command`` as issued by this signer: its ``issuer`` set and its signature over the rest."""
        issued = command.model_copy(update={"issuer": self.issuer, "signature": None})
        signature = self.private_key.sign(canonical_content(issued))
        return issued.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})

    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def verify_command(command: ModelCommand, public_key_of) -> str:  # noqa: ANN001 - a lookup callable
    """The issuer of ``command`` when its signature verifies with ``public_key_of(issuer)``'s key (None:
    not trusted) and that issuer may speak for its ``requested_by``; else ``Unverified``. Expiry and
    replay are the caller's to check (they need a clock and a memory)."""
    if not command.issuer or not command.signature:
        raise Unverified("unsigned", "it is not signed (a command needs an issuer and its signature)")
    try:
        issuer = check_issuer(command.issuer)
    except ValueError:
        raise Unverified("unknown_issuer", "its issuer is not a valid issuer name") from None
    key = public_key_of(issuer)
    if key is None:
        raise Unverified("unknown_issuer", f"issuer {issuer} is not trusted by this gatekeeper (no public key "
                                           "for it among its trusted keys)")
    try:
        signature = base64.b64decode(command.signature, validate=True)
        key.verify(signature, canonical_content(command))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unverified("bad_signature", f"its signature does not verify with issuer {issuer}'s key (forged, "
                                          "or altered after signing)") from None
    if not may_speak_for(issuer, command.requested_by):
        whom = "only for themselves" if person_of(issuer) is not None else \
            f"only for {SERVICE_CHANNELS.get(issuer, issuer)}:<name>"
        raise Unverified("impersonation", f"issuer {issuer} may not speak for someone else's requested_by "
                                          f"(its key speaks {whom})")
    return issuer
