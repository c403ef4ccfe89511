"""Command keys on disk: an issuer's key pair, the gatekeeper's trusted public keys, and the keys the
local stack makes for itself.

* ``<keys dir>/<stem>.key`` — an issuer's Ed25519 private key (PKCS#8 PEM, mode 0600), ``<stem>.pub``
  its public key; the stem is the issuer's name with ``:`` as ``.`` (``operator:alice`` ->
  ``operator.alice``), a name a file, a Kubernetes Secret key and a compose secret can all carry.
  The keys dir is ``EMBERWATCH_COMMAND_KEYS_DIR`` (default ``<state dir>/keys``).
* ``<trusted dir>/<stem>.pub`` — the public keys the gatekeeper accepts (default ``<keys dir>/trusted``).
  Each lookup reads the directory again: removing a file revokes that issuer at its next command.
* A process signs with ``EMBERWATCH_COMMAND_SIGNING_KEY`` (the PEM itself, a secret: compose and
  Kubernetes mount it as a file) when set, else with ``<keys dir>/<its stem>.key``.

Nothing here ever overwrites a key.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emberwatch.common.config import Settings
from emberwatch.security.command_signing import CommandSigner, check_issuer, person_of

log = logging.getLogger(__name__)

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
MAX_KEY_FILE_BYTES = 4096  # an Ed25519 PEM is about 120 bytes; anything larger is not a key
# The issuers a local stack signs as: its console, its Discord bot (the notifier) and the CLI's user.
CONSOLE, DISCORD_BOT = "console", "discord-bot"


class SigningKeyMissing(RuntimeError):
    """No usable private key for the issuer: the message says where it was looked for and what to do."""


def key_file_stem(issuer: str) -> str:
    """The file name (without suffix) of ``issuer``'s keys: ``operator:alice`` -> ``operator.alice``."""
    return check_issuer(issuer).replace(":", ".", 1)


def keys_dir(settings: Settings) -> Path:
    """``EMBERWATCH_COMMAND_KEYS_DIR``, else ``<state dir>/keys``."""
    return Path(settings.command_keys_dir) if settings.command_keys_dir else Path(settings.state_dir) / "keys"


def trusted_dir(settings: Settings) -> Path:
    """The gatekeeper's trusted public keys: ``EMBERWATCH_COMMAND_TRUSTED_KEYS_DIR``, else
    ``<keys dir>/trusted``."""
    configured = settings.command_trusted_keys_dir
    return Path(configured) if configured else keys_dir(settings) / "trusted"


def cli_issuer(settings: Settings) -> str:
    """Who signs the CLI's commands: ``EMBERWATCH_COMMAND_ISSUER``, else ``operator:<OS user>``."""
    issuer = settings.command_issuer or f"operator:{getpass.getuser()}"
    try:
        issuer = check_issuer(issuer)
    except ValueError as exc:
        raise SigningKeyMissing(f"{exc}; set EMBERWATCH_COMMAND_ISSUER=operator:<your name>") from None
    if person_of(issuer) is None:
        raise SigningKeyMissing(f"the CLI signs as a person (operator:<name>), not as the service {issuer}; "
                                "set EMBERWATCH_COMMAND_ISSUER=operator:<your name>")
    return issuer


def _read_small(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path} is larger than a key file ({MAX_KEY_FILE_BYTES} bytes at most)")
    return data


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_signer(settings: Settings, issuer: str) -> CommandSigner:
    """``issuer``'s signer, from ``EMBERWATCH_COMMAND_SIGNING_KEY`` when set, else from
    ``<keys dir>/<stem>.key``. Raises ``SigningKeyMissing`` (never with the key in its message)."""
    issuer = check_issuer(issuer)
    if settings.command_signing_key is not None:
        where = "EMBERWATCH_COMMAND_SIGNING_KEY"
        pem = settings.command_signing_key.get_secret_value().encode()
    else:
        path = keys_dir(settings) / f"{key_file_stem(issuer)}{PRIVATE_SUFFIX}"
        where = str(path)
        try:
            pem = _read_small(path)
        except FileNotFoundError:
            raise SigningKeyMissing(
                f"no key to sign commands as {issuer}: {path} does not exist. Make one with `emberwatch keys "
                f"create {person_of(issuer) or issuer}{'' if person_of(issuer) else ' --service'}` and give the "
                "gatekeeper its .pub (docs/security.md), or set EMBERWATCH_COMMAND_SIGNING_KEY") from None
        except (OSError, ValueError) as exc:
            raise SigningKeyMissing(f"the key to sign commands as {issuer} cannot be read: {exc}") from None
    try:
        return CommandSigner(issuer, private_key_from_pem(pem))
    except (ValueError, TypeError) as exc:  # cryptography's messages never hold the key
        raise SigningKeyMissing(f"{where} is not an unencrypted Ed25519 private key (PEM): "
                                f"{type(exc).__name__}") from None


class TrustedKeys:
    """The gatekeeper's trusted public keys: ``<directory>/<stem>.pub``, read at every lookup."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def __call__(self, issuer: str) -> Ed25519PublicKey | None:
        """``issuer``'s public key, or None when it has none here (or the file is not a key)."""
        path = self.directory / f"{key_file_stem(issuer)}{PUBLIC_SUFFIX}"
        try:
            return public_key_from_pem(_read_small(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("a trusted key file is unusable", extra={"path": str(path), "error": str(exc)})
            return None

    def issuers(self) -> list[str]:
        """The issuers with a public key file here (for a person reading the logs)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(PUBLIC_SUFFIX)].replace(".", ":", 1) if p.name.startswith("operator.")
                      else p.name[: -len(PUBLIC_SUFFIX)] for p in self.directory.glob(f"*{PUBLIC_SUFFIX}"))


@dataclass(frozen=True)
class KeyPair:
    issuer: str
    private_path: Path
    public_path: Path
    public_pem: bytes


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file created with ``mode``; FileExistsError if there is one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def create_key_pair(directory: Path, issuer: str) -> KeyPair:
    """A new key pair for ``issuer`` in ``directory``: ``<stem>.key`` (0600) and ``<stem>.pub``.
    FileExistsError when either exists: a key is never overwritten."""
    stem = key_file_stem(issuer)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private, public = directory / f"{stem}{PRIVATE_SUFFIX}", directory / f"{stem}{PUBLIC_SUFFIX}"
    if public.exists():
        raise FileExistsError(f"{public} exists; a key is never overwritten (remove it first to replace it)")
    key = Ed25519PrivateKey.generate()
    _write_new(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()), 0o600)
    pem = public_pem(key.public_key())
    _write_new(public, pem, 0o644)
    return KeyPair(issuer, private, public, pem)


def trust(directory: Path, issuer: str, pem: bytes) -> Path:
    """Add ``issuer``'s public key to a trusted-keys directory (FileExistsError if it has one)."""
    public_key_from_pem(pem)  # only a key goes in
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key_file_stem(issuer)}{PUBLIC_SUFFIX}"
    _write_new(path, pem, 0o644)
    return path


def local_issuers() -> list[str]:
    """The local stack's issuers: its console, its Discord bot and the OS user running it."""
    issuers = [CONSOLE, DISCORD_BOT]
    try:
        issuers.append(check_issuer(f"operator:{getpass.getuser()}"))
    except (ValueError, OSError, KeyError):
        pass  # an OS user name that is not an issuer name: `emberwatch keys create` with one that is
    return issuers


def ensure_local_keys(settings: Settings, issuers: list[str] | None = None) -> list[str]:
    """Key pairs for the local stack's issuers that have none yet under the keys dir, each trusted by
    the local gatekeeper as it is made (an existing key, trusted or revoked, stays as it is). Returns
    the issuers whose keys were made."""
    made = []
    directory = keys_dir(settings)
    for issuer in issuers if issuers is not None else local_issuers():
        stem = key_file_stem(issuer)
        if (directory / f"{stem}{PRIVATE_SUFFIX}").exists() or (directory / f"{stem}{PUBLIC_SUFFIX}").exists():
            continue
        pair = create_key_pair(directory, issuer)
        try:
            trust(trusted_dir(settings), issuer, pair.public_pem)
        except FileExistsError:
            log.warning("a trusted key for a new local issuer already exists; left as it is",
                        extra={"issuer": issuer})
        made.append(issuer)
    return made
