"""`krypton user ...`: create and list dashboard users (the first one included)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from krypton.app import users
from krypton.cli import support
from krypton.cli.support import out
from krypton.domain.errors import DomainError
from krypton.domain.roles import Role
from krypton.domain.users import check_password

app = typer.Typer(help="Create and list dashboard users.", no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the password, without its line ending (a password may hold spaces).
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The user's email address (signs in with it).")],
    role: Annotated[Role, typer.Option(help="owner, developer or viewer (a merchant's), or "
                                            "operator (the platform's).", case_sensitive=False)],
    merchant: Annotated[str | None, typer.Option(
        help="Merchant id (mer_...); required for every role but operator.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input "
                                 "instead of asking for it twice.")] = False,
) -> None:
    """Create a dashboard user; the password is asked for twice, hidden, unless piped in."""
    password = _password(password_stdin)
    try:  # said before the database is opened
        check_password(password)
    except DomainError as exc:
        raise support.fail(exc.message) from None
    user = support.run(lambda c: users.create_user(c.deps, c.password_hasher, email, password, role,
                                                   merchant))
    where = f" of merchant {user.merchant_id}" if user.merchant_id else ""
    out.print(f"User [bold]{user.id}[/bold] ({user.email}, {user.role}{where}) created.")


@app.command("list")
def user_list(merchant: Annotated[str | None, typer.Option(
        help="Only this merchant's users (mer_...).")] = None) -> None:
    """List dashboard users (never their passwords)."""
    table = support.table("id", "email", "role", "merchant", "created", "disabled")
    for u in support.run(lambda c: users.list_users(c.deps, merchant)):
        table.add_row(u.id, u.email, u.role.value, u.merchant_id or "",
                      u.created_at.isoformat(), u.disabled_at.isoformat() if u.disabled_at else "")
    out.print(table)
