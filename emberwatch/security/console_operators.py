"""The console's named operators: one secret each, kept as scrypt hashes in one file.

The file has one ``name:scrypt$<n>$<r>$<p>$<salt>$<hash>`` line per operator (``#`` comments and blank
lines are ignored). A secret is ``<name>:<random>``: the name comes from the credential, and the hash
covers the whole secret, so an operator cannot sign in under another name. ``emberwatch
console-operator add/remove`` writes the file; the console re-reads it when it changes, so a removed
operator can no longer sign in and their sessions end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emberwatch.common.config import Settings

NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# scrypt's cost: 16 MiB and ~50 ms a check (RFC 7914's interactive figures); sign-in is throttled
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32
_MAX_FILE_BYTES = 1024 * 1024


# The one name the legacy shared token signs in as: it says who knew the token, not who typed it.
LEGACY_OPERATOR = "shared-token"


def operators_path(settings: Settings) -> Path:
    """Where the named operators are kept: ``EMBERWATCH_CONSOLE_OPERATORS_FILE``, else
    ``console_operators`` in the secrets directory when there is one, else under the state directory."""
    if settings.console_operators_file is not None:
        return settings.console_operators_file
    if settings.secrets_dir is not None:
        return settings.secrets_dir / "console_operators"
    return settings.state_dir / "console" / "operators"


class OperatorFileError(ValueError):
    """The operators file cannot be read as operator lines (the line number says where)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
                p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES, maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=64 * 1024 * 1024)
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


# What an unknown name is checked against, so that a refusal takes as long whoever is named.
_DUMMY_HASH = hash_secret("not an operator", salt=b"\0" * _SALT_BYTES)


def name_of(secret: str) -> str | None:
    """The operator a secret claims to be (``<name>:<random>``), or None if it has no valid name."""
    name, sep, rest = secret.partition(":")
    return name if sep and rest and NAME.match(name) else None


def new_secret(name: str) -> str:
    return f"{name}:{secrets.token_urlsafe(32)}"


def parse(text: str, where: str = "the operators file") -> dict[str, str]:
    operators: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not NAME.match(name) or not stored.startswith("scrypt$") or stored.count("$") != 5:
            raise OperatorFileError(f"{where}, line {number}: not `name:scrypt$...`")  # never the line itself
        if name in operators:
            raise OperatorFileError(f"{where}, line {number}: operator {name!r} appears twice")
        operators[name] = stored
    return operators


@dataclass
class OperatorRegistry:
    """The operators file, re-read whenever it changes (size, mtime or inode)."""

    path: Path
    _seen: tuple[int, int, int] | None = None
    _operators: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._operators = None, {}
            return {}
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._operators is None or stamp != self._seen:
            if st.st_size > _MAX_FILE_BYTES:
                raise OperatorFileError(f"{self.path} is larger than {_MAX_FILE_BYTES} bytes")
            self._operators = parse(self.path.read_text(encoding="utf-8"), str(self.path))
            self._seen = stamp
        return self._operators

    def names(self) -> list[str]:
        return sorted(self._load())

    def exists(self, name: str) -> bool:
        return name in self._load()

    def authenticate(self, secret: str) -> str | None:
        """The operator whose secret this is, or None. Slow on purpose (scrypt): run it off the loop."""
        name = name_of(secret)
        stored = self._load().get(name or "")
        ok = verify_secret(secret, stored or _DUMMY_HASH)
        return name if ok and stored is not None else None

    # --- changes (the CLI) ---------------------------------------------------------------------
    def _write(self, operators: dict[str, str]) -> None:
        """Rewrite the file in place (same inode: a bind-mounted copy sees the change), mode 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = "# Emberwatch console operators: name:scrypt hash (emberwatch console-operator add/remove)\n" + \
            "".join(f"{name}:{stored}\n" for name, stored in sorted(operators.items()))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self._operators = None

    def add(self, name: str, *, replace: bool = False, reserved: tuple[str, ...] = ()) -> str:
        """Add ``name`` (or give them a new secret with ``replace``); returns the secret, shown once."""
        if not NAME.match(name) or name in reserved:
            raise ValueError(f"operator name {name[:80]!r}: letters, digits and . _ @ - only (1-64)"
                             + (f"; {', '.join(reserved)} is reserved" if reserved else ""))
        operators = dict(self._load())
        if name in operators and not replace:
            raise ValueError(f"operator {name!r} exists already (--replace gives them a new secret)")
        secret = new_secret(name)
        operators[name] = hash_secret(secret)
        self._write(operators)
        return secret

    def remove(self, name: str) -> None:
        operators = dict(self._load())
        if name not in operators:
            raise ValueError(f"no operator {name[:80]!r} in {self.path}")
        del operators[name]
        self._write(operators)


def ensure_demo_operator(registry: OperatorRegistry, secret_file: Path, name: str = "demo") -> Path | None:
    """The demo's operator: when the console has no operators yet, add ``name`` and keep its secret in
    ``secret_file`` (0600) for the newcomer to sign in with. Returns that file while it holds the
    secret of an operator that still exists; None when the console has other operators (theirs to use)."""
    names = registry.names()
    if not names:
        secret = registry.add(name)
        secret_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secret + "\n")
        return secret_file
    if name in names and secret_file.is_file():
        return secret_file
    return None
