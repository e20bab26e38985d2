"""`krypton user create|list` against a fresh data folder (the group is invoked directly until
cli/main.py adds it as `krypton user`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from krypton.cli import app as krypton
from krypton.cli import user

runner = CliRunner()
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in [n for n in os.environ if n.startswith("KRYPTON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KRYPTON_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def shop() -> str:
    created = runner.invoke(krypton, ["merchant", "create", "--name", "Shop", "--json"])
    assert created.exit_code == 0, created.output
    return str(json.loads(created.output)["id"])


def test_every_user_command_has_help() -> None:
    for args in (["--help"], ["create", "--help"], ["list", "--help"]):
        result = runner.invoke(user.app, args)
        assert result.exit_code == 0 and "Usage" in result.output
    assert "--password-stdin" in runner.invoke(user.app, ["create", "--help"]).output


def test_the_first_users_from_stdin_or_a_hidden_prompt_then_listed(shop: str) -> None:
    piped = runner.invoke(user.app, ["create", "--email", "Ada@Example.com", "--role", "owner",
                                     "--merchant", shop, "--password-stdin"], input=PASSWORD + "\n")
    assert piped.exit_code == 0, piped.output
    assert f"(ada@example.com, owner of merchant {shop}) created." in piped.output
    prompted = runner.invoke(user.app, ["create", "--email", "root@example.com", "--role",
                                        "OPERATOR"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.output  # hidden while typed
    assert "(root@example.com, operator) created." in prompted.output
    listed = runner.invoke(user.app, ["list"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0
    assert "ada@example.com" in listed.output and "root@example.com" in listed.output
    assert "argon2" not in listed.output
    mine = runner.invoke(user.app, ["list", "--merchant", shop], env={"COLUMNS": "250"})
    assert "ada@example.com" in mine.output and "root@example.com" not in mine.output


@pytest.mark.parametrize(("args", "password", "says"), [
    (["--role", "viewer", "--merchant", "SHOP"], "short", "The password has 5 characters; choose "
     "one of at least 12."),
    (["--role", "operator", "--merchant", "SHOP"], PASSWORD, "An operator belongs to no merchant; "
     "leave the merchant out."),
    (["--role", "owner"], PASSWORD, "A user with the role owner belongs to a merchant; give its id"),
    (["--role", "owner", "--merchant", "mer_nope"], PASSWORD, "No merchant 'mer_nope'"),
])
def test_bad_input_is_exit_2_with_a_sentence(shop: str, args: list[str], password: str,
                                             says: str) -> None:
    args = [shop if a == "SHOP" else a for a in args]
    result = runner.invoke(user.app, ["create", "--email", "ada@example.com", *args,
                                      "--password-stdin"], input=password + "\n")
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())


def test_an_email_taken_in_any_case_is_exit_2(shop: str) -> None:
    for email, code in (("ada@example.com", 0), ("ADA@example.com", 2)):
        result = runner.invoke(user.app, ["create", "--email", email, "--role", "viewer",
                                          "--merchant", shop, "--password-stdin"],
                               input=PASSWORD + "\n")
        assert result.exit_code == code, result.output
    assert "exists already" in result.output


def test_an_unknown_role_is_a_usage_error() -> None:
    result = runner.invoke(user.app, ["create", "--email", "a@b.co", "--role", "admin"])
    assert result.exit_code == 2
