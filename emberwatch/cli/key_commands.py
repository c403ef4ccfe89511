"""``emberwatch keys create/trust/revoke/list``: the Ed25519 keys that sign operator commands
(docs/security.md, "Operator commands are signed").

Adding an operator is ``emberwatch keys create alice`` on their machine (the private key stays there)
and ``emberwatch keys trust operator:alice alice.pub`` where the gatekeeper reads its trusted keys;
revoking is ``emberwatch keys revoke operator:alice`` there (or removing the .pub file).
"""

from __future__ import annotations

from pathlib import Path

import typer

from emberwatch.cli.consoles import console, out

keys_app = typer.Typer(help="Make, trust, revoke and list the keys that sign operator commands.",
                       no_args_is_help=True)

_TRUSTED = typer.Option(None, "--trusted-dir", help="The gatekeeper's trusted public keys (default: "
                                                    "EMBERWATCH_COMMAND_TRUSTED_KEYS_DIR, else <keys dir>/trusted).")


def _issuer(name: str, service: bool) -> str:
    from emberwatch.security.command_signing import PERSON_PREFIX, check_issuer

    issuer = name if service or name.startswith(PERSON_PREFIX) else f"{PERSON_PREFIX}{name}"
    try:
        return check_issuer(issuer)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _trusted_dir(given: Path | None) -> Path:
    from emberwatch.common.config import get_settings
    from emberwatch.security.command_keys import trusted_dir

    return given or trusted_dir(get_settings())


@keys_app.command("create")
def create(name: str = typer.Argument(..., help="A person's name (their issuer is operator:<name>, asking as "
                                                "cli:<name>), or with --service a service's (console, discord-bot)."),
           service: bool = typer.Option(False, "--service", help="The key of a service that vouches for the "
                                                                  "people it names, not a person's."),
           directory: Path = typer.Option(None, "--dir", help="Where to write it (default: "
                                                              "EMBERWATCH_COMMAND_KEYS_DIR, else <state dir>/keys)."),
           trust_here: bool = typer.Option(False, "--trust", help="Also trust it in this host's gatekeeper "
                                                                  "trusted keys (a gatekeeper on this host).")) -> None:
    """Make a key pair: the private key (mode 0600, never printed) and its public key, printed for the
    gatekeeper's operator. Never overwrites a key."""
    from emberwatch.common.config import get_settings
    from emberwatch.security.command_keys import create_key_pair, keys_dir, trust

    issuer = _issuer(name, service)
    folder = directory or keys_dir(get_settings())
    try:
        pair = create_key_pair(folder, issuer)
    except (FileExistsError, OSError) as exc:
        console.print(f"[red]keys create:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"key of {issuer}: private {pair.private_path} (keep it; mode 0600), public {pair.public_path}")
    if trust_here:
        try:
            path = trust(_trusted_dir(None), issuer, pair.public_pem)
        except (FileExistsError, OSError) as exc:
            console.print(f"[red]keys create:[/] made, but not trusted: {exc}")
            raise typer.Exit(1) from None
        console.print(f"trusted by this host's gatekeeper: {path}")
    else:
        console.print(f"to let the gatekeeper carry out its commands: `emberwatch keys trust {issuer} "
                      f"{pair.public_path.name}` where the gatekeeper runs (or copy the file into its trusted "
                      "keys directory, named as it is)")
    out.print(pair.public_pem.decode(), markup=False, highlight=False, end="")


@keys_app.command("trust")
def trust_key(issuer: str = typer.Argument(..., help="The issuer: operator:<name>, console or discord-bot."),
              public_key: Path = typer.Argument(..., exists=True, dir_okay=False, help="Its public key (PEM)."),
              trusted: Path | None = _TRUSTED) -> None:
    """Trust an issuer's public key: the gatekeeper carries out its signed commands from the next one on."""
    from emberwatch.security.command_keys import MAX_KEY_FILE_BYTES, trust
    from emberwatch.security.command_signing import check_issuer

    try:
        check_issuer(issuer)
        pem = public_key.read_bytes()[: MAX_KEY_FILE_BYTES + 1]
        path = trust(_trusted_dir(trusted), issuer, pem)
    except (ValueError, TypeError, FileExistsError, OSError) as exc:
        console.print(f"[red]keys trust:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{issuer} trusted: {path}")


@keys_app.command("revoke")
def revoke(issuer: str = typer.Argument(..., help="The issuer whose commands stop being carried out."),
           trusted: Path | None = _TRUSTED) -> None:
    """Revoke an issuer: its public key leaves the trusted keys, and the gatekeeper refuses its next command."""
    from emberwatch.security.command_keys import PUBLIC_SUFFIX, key_file_stem

    try:
        path = _trusted_dir(trusted) / f"{key_file_stem(issuer)}{PUBLIC_SUFFIX}"
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not path.exists():
        console.print(f"[red]keys revoke:[/] {issuer} is not trusted ({path} does not exist)")
        raise typer.Exit(1)
    path.unlink()
    console.print(f"{issuer} revoked: {path} removed")


@keys_app.command("list")
def list_trusted(trusted: Path | None = _TRUSTED) -> None:
    """The issuers the gatekeeper trusts (those with a public key in its trusted keys)."""
    from emberwatch.security.command_keys import TrustedKeys

    keys = TrustedKeys(_trusted_dir(trusted))
    issuers = keys.issuers()
    console.print(f"{len(issuers)} trusted issuer(s) in {keys.directory}")
    for issuer in issuers:
        out.print(issuer, markup=False, highlight=False)
