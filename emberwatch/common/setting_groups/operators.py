"""Who may command: the keys of signed operator commands (``emberwatch/security``, docs/security.md)
and the console's named operators (``emberwatch/security/console_operators.py``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class OperatorSettings(BaseModel):
    command_signing_key: SecretStr | None = Field(
        None, description="This process's Ed25519 private key (PEM, secret) for signing operator commands: "
                          "the console's, the Discord bot's (the notifier) or a person's CLI; compose and "
                          "Kubernetes mount it as the file EMBERWATCH_COMMAND_SIGNING_KEY in the secrets "
                          "directory. Unset: <EMBERWATCH_COMMAND_KEYS_DIR>/<issuer>.key.")
    command_keys_dir: Path | None = Field(
        None, description="Where this host keeps command keys: <issuer>.key private keys (made by `emberwatch "
                          "keys create` and, for the local console, bot and CLI user, by `emberwatch stack up`) "
                          "and trusted/, the public keys the gatekeeper accepts by default. Default "
                          "<EMBERWATCH_STATE_DIR>/keys.")
    command_trusted_keys_dir: Path | None = Field(
        None, description="The gatekeeper's trusted public keys: the issuers whose signed operator commands it "
                          "carries out, one PEM file each, <issuer>.pub (operator.alice.pub for operator:alice); "
                          "removing a file revokes that issuer at its next command. Default "
                          "<EMBERWATCH_COMMAND_KEYS_DIR>/trusted.")
    command_issuer: str | None = Field(
        None, description="Who signs the commands the CLI sends (emberwatch promote, rollback, approve, reject): "
                          "operator:<name>, whose key may only ask as cli:<name>. Default operator:<OS user>.")

    # --- the operator console's named operators (emberwatch/security/console_operators.py) ------
    console_operators_file: Path | None = Field(
        None, description="The console's named operators: one `name:scrypt$...` line each, written by "
                          "`emberwatch console-operator add/remove` and re-read by the console on a change "
                          "(a removed operator's sessions end). Unset: `console_operators` in the secrets "
                          "directory when there is one, else <EMBERWATCH_STATE_DIR>/console/operators.")
