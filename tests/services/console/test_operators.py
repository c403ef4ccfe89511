"""Named operators: scrypt hashes in one file, the name taken from the secret, changes seen at once."""

from __future__ import annotations

import stat

import pytest

from emberwatch.security.console_operators import (
    OperatorFileError,
    OperatorRegistry,
    ensure_demo_operator,
    hash_secret,
    name_of,
    verify_secret,
)


def test_a_secret_verifies_against_its_hash_and_nothing_else() -> None:
    stored = hash_secret("alice:s3cret", n=2**10)
    assert stored.startswith("scrypt$1024$8$1$") and "s3cret" not in stored
    assert verify_secret("alice:s3cret", stored)
    assert not verify_secret("alice:s3creT", stored)
    assert not verify_secret("alice:s3cret", stored.replace("scrypt", "md5"))
    assert not verify_secret("alice:s3cret", "scrypt$x$8$1$AA$AA")  # a damaged line refuses, not raises
    assert hash_secret("same", n=2**10) != hash_secret("same", n=2**10)  # salted


def test_the_name_comes_from_the_secret() -> None:
    assert name_of("alice:abc") == "alice"
    assert name_of("abc") is None and name_of("alice:") is None and name_of("<img>:abc") is None


def test_add_authenticate_remove(tmp_path) -> None:
    registry = OperatorRegistry(tmp_path / "ops" / "operators")
    alice, bob = registry.add("alice"), registry.add("bob")
    assert alice.startswith("alice:") and len(alice) > 40
    assert stat.S_IMODE((tmp_path / "ops" / "operators").stat().st_mode) == 0o600
    assert alice not in (tmp_path / "ops" / "operators").read_text()
    assert registry.authenticate(alice) == "alice" and registry.authenticate(bob) == "bob"
    # bob's random part under alice's name, a made-up name, a wrong secret: nobody
    assert registry.authenticate("alice:" + bob.split(":", 1)[1]) is None
    assert registry.authenticate("carol:" + alice.split(":", 1)[1]) is None
    assert registry.authenticate(alice + "x") is None
    with pytest.raises(ValueError, match="exists already"):
        registry.add("alice")
    with pytest.raises(ValueError, match="reserved"):
        registry.add("shared-token", reserved=("shared-token",))
    with pytest.raises(ValueError, match="letters, digits"):
        registry.add("<script>")
    new = registry.add("alice", replace=True)
    assert registry.authenticate(alice) is None and registry.authenticate(new) == "alice"
    # another process (the CLI) removes bob: this registry sees it at once
    OperatorRegistry(registry.path).remove("bob")
    assert registry.names() == ["alice"] and registry.authenticate(bob) is None
    with pytest.raises(ValueError, match="no operator"):
        registry.remove("bob")


def test_a_damaged_file_is_refused_with_its_line_number_not_its_content(tmp_path) -> None:
    path = tmp_path / "operators"
    path.write_text("# comment\n\nalice:scrypt$1$2$3$4$5\nbob:hunter2-plaintext\n")
    with pytest.raises(OperatorFileError, match="line 4") as exc:
        OperatorRegistry(path).names()
    assert "hunter2" not in str(exc.value)
    path.write_text("alice:scrypt$1$2$3$4$5\nalice:scrypt$1$2$3$4$5\n")
    with pytest.raises(OperatorFileError, match="twice"):
        OperatorRegistry(path).names()
    assert OperatorRegistry(tmp_path / "missing").names() == []  # no file: no operators


def test_the_demo_operator_is_made_once_and_only_when_there_is_none(tmp_path) -> None:
    registry = OperatorRegistry(tmp_path / "operators")
    secret_file = tmp_path / "demo-operator-secret"
    assert ensure_demo_operator(registry, secret_file) == secret_file
    secret = secret_file.read_text().strip()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert registry.authenticate(secret) == "demo"
    assert ensure_demo_operator(registry, secret_file) == secret_file  # again: the same secret, kept
    assert secret_file.read_text().strip() == secret
    other = OperatorRegistry(tmp_path / "theirs")
    other.add("alice")
    assert ensure_demo_operator(other, tmp_path / "other-secret") is None  # they have operators: no demo
    assert other.names() == ["alice"] and not (tmp_path / "other-secret").exists()
