"""``fieldreport user ...``: dashboard accounts."""

from __future__ import annotations

import sys
from typing import Any

import click
from email_validator import EmailNotValidError, validate_email

from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    pop_settings,
    print_json,
    settings_options,
    with_state,
)
from fieldreport.dashboard.passwords import generate_password, hash_password, password_problem
from fieldreport.state import AppState
from fieldreport.storage.accounts import (
    UserExists,
    add_member,
    create_user,
    delete_user,
    delete_user_sessions,
    get_user,
    list_users,
    remove_member,
    set_password,
)
from fieldreport.storage.projects import get_project


@click.group()
def user() -> None:
    """Create and manage dashboard accounts and their project memberships."""


def _checked_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        fail(f"not a valid email address: {exc}")
        raise AssertionError from exc  # unreachable: fail() exits


def _choose_password(generate: bool) -> tuple[str, bool]:
    """(password, one_time). Prompts on a terminal unless ``generate``."""
    if generate or not sys.stdin.isatty():
        if not generate:
            # Piped input: read the password from its first line.
            line = sys.stdin.readline().rstrip("\n")
            if line:
                problem = password_problem(line)
                if problem:
                    fail(problem)
                return line, False
        return generate_password(), True
    while True:
        password: str = click.prompt(
            "Password (empty: print a one-time password)",
            hide_input=True,
            default="",
            show_default=False,
        )
        if not password:
            return generate_password(), True
        problem = password_problem(password)
        if problem:
            click.echo(f"error: {problem}", err=True)
            continue
        if click.prompt("Repeat the password", hide_input=True) != password:
            click.echo("error: the passwords do not match", err=True)
            continue
        return password, False


@user.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Administrators see every project and manage them.")
@click.option(
    "--generate-password",
    "generate",
    is_flag=True,
    help="Print a one-time password instead of prompting; it must be changed at first login.",
)
@click.option("--project", "projects", multiple=True, help="Make the user a member (repeatable).")
@settings_options(STORAGE_FIELDS)
def create(
    email: str, admin: bool, generate: bool, projects: tuple[str, ...], **kwargs: Any
) -> None:
    """Create a dashboard user.

    Prompts for the password on a terminal (leave it empty for a one-time password), reads
    it from the first line of piped input, or prints a one-time password with
    --generate-password. A one-time password must be changed at the first login.
    """
    settings = pop_settings(kwargs)
    address = _checked_email(email)
    password, one_time = _choose_password(generate)

    async def go(state: AppState) -> None:
        hashed = await hash_password(password)
        try:
            async with state.db.write() as conn:
                found = []
                for name in projects:
                    project = await get_project(conn, name)
                    if project is None:
                        fail(f"no project named {name!r} (see `fieldreport project list`)")
                    assert project is not None
                    found.append(project)
                created = await create_user(
                    conn, address, hashed, is_admin=admin, must_change_password=one_time
                )
                for project in found:
                    await add_member(conn, project.id, created.id)
        except UserExists as exc:
            fail(str(exc))
            return
        role = "administrator" if admin else "user"
        click.echo(f"Created {role} {created.email} (id {created.id}).")
        if found:
            click.echo("Member of: " + ", ".join(p.name for p in found))
        if one_time:
            click.echo(f"One-time password: {password}")
            click.echo("It must be changed at the first login; it is not shown again.")
        click.echo(f"Log in at {state.public_url}/login")

    with_state(settings, go)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(as_json: bool, **kwargs: Any) -> None:
    """List dashboard users."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            found = await list_users(conn)
        if as_json:
            print_json(
                [
                    {
                        "id": u.id,
                        "email": u.email,
                        "admin": u.is_admin,
                        "created_at": u.created_at.isoformat(),
                        "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                    }
                    for u in found
                ]
            )
            return
        if not found:
            click.echo("no users yet: fieldreport user create EMAIL --admin")
        for u in found:
            last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
            click.echo(
                f"{u.id:>4}  {u.email}{'  (admin)' if u.is_admin else ''}  last login {last}"
            )

    with_state(settings, go)


@user.command("set-password")
@click.argument("email")
@click.option("--generate-password", "generate", is_flag=True, help="Print a one-time password.")
@settings_options(STORAGE_FIELDS)
def set_password_(email: str, generate: bool, **kwargs: Any) -> None:
    """Set a user's password (logs them out everywhere)."""
    settings = pop_settings(kwargs)
    password, one_time = _choose_password(generate)

    async def go(state: AppState) -> None:
        hashed = await hash_password(password)
        async with state.db.write() as conn:
            found = await get_user(conn, email)
            if found is None:
                fail(f"no user {email!r}")
                return
            await set_password(conn, found.id, hashed, must_change=one_time)
            await delete_user_sessions(conn, found.id)
        click.echo(f"Password of {found.email} changed.")
        if one_time:
            click.echo(f"One-time password: {password}")

    with_state(settings, go)


@user.command("delete")
@click.argument("email")
@settings_options(STORAGE_FIELDS)
def delete(email: str, **kwargs: Any) -> None:
    """Delete a user (their logins end at once)."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.write() as conn:
            found = await get_user(conn, email)
            if found is None:
                fail(f"no user {email!r}")
                return
            await delete_user(conn, found.id)
        click.echo(f"Deleted {found.email}.")

    with_state(settings, go)


@user.command("member")
@click.argument("email")
@click.argument("project_name", metavar="PROJECT")
@click.option("--remove", is_flag=True, help="Remove the membership instead.")
@settings_options(STORAGE_FIELDS)
def member(email: str, project_name: str, remove: bool, **kwargs: Any) -> None:
    """Add a user to a project (or --remove them)."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.write() as conn:
            found = await get_user(conn, email)
            project = await get_project(conn, project_name)
            if found is None or project is None:
                fail(f"no user {email!r}" if found is None else f"no project {project_name!r}")
                return
            if remove:
                await remove_member(conn, project.id, found.id)
            else:
                await add_member(conn, project.id, found.id)
        verb = "removed from" if remove else "added to"
        click.echo(f"{found.email} {verb} {project.name}.")

    with_state(settings, go)
