"""``fieldreport project ...``: projects, keys and allowed origins."""

from __future__ import annotations

from typing import Any

import click

from fieldreport.api.serialize import project_dict
from fieldreport.cli.common import (
    STORAGE_FIELDS,
    fail,
    pop_settings,
    print_json,
    require_project,
    settings_options,
    with_state,
)
from fieldreport.ingest.cors import normalize_origin
from fieldreport.keys import KeyKind
from fieldreport.state import AppState
from fieldreport.storage.projects import (
    ProjectExists,
    create_project,
    list_projects,
    rotate_key,
    set_origins,
)


@click.group()
def project() -> None:
    """Create and manage projects, their keys and allowed browser origins."""


@project.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def create(name: str, as_json: bool, **kwargs: Any) -> None:
    """Create a project and print its keys (shown only this once)."""
    settings = pop_settings(kwargs)
    name = name.strip()
    if not name or len(name) > 200:
        fail("a project name must be 1 to 200 characters")

    async def go(state: AppState) -> None:
        try:
            async with state.db.write() as conn:
                created = await create_project(conn, name)
        except ProjectExists as exc:
            fail(str(exc))
            return
        p = created.project
        if as_json:
            print_json(
                {
                    "id": p.id,
                    "name": p.name,
                    "public_key": created.public_key,
                    "secret_key": created.secret_key,
                }
            )
            return
        click.echo(f"Created project {p.name!r} (id {p.id}).")
        click.echo(f"  public key: {created.public_key}   (embed in your pages and apps)")
        click.echo(f"  secret key: {created.secret_key}   (for your backends; keep it secret)")
        click.echo("The keys are stored hashed and will not be shown again.")
        click.echo(
            f"Allow your web app's origin: fieldreport project set {p.name} "
            "--origin https://app.example.com"
        )

    with_state(settings, go)


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options(STORAGE_FIELDS)
def list_(as_json: bool, **kwargs: Any) -> None:
    """List projects (keys are never shown, only their first characters)."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        async with state.db.read() as conn:
            found = await list_projects(conn)
        if as_json:
            print_json([project_dict(p) for p in found])
            return
        if not found:
            click.echo("no projects yet: fieldreport project create NAME")
        for p in found:
            origins = ", ".join(p.origins) or "(no browser origins allowed)"
            click.echo(
                f"{p.id:>4}  {p.name}  public {p.public_key_hint}…  secret {p.secret_key_hint}…  "
                f"origins: {origins}"
            )

    with_state(settings, go)


@project.command("show")
@click.argument("name")
@settings_options(STORAGE_FIELDS)
def show(name: str, **kwargs: Any) -> None:
    """Show one project as JSON."""
    settings = pop_settings(kwargs)

    async def go(state: AppState) -> None:
        print_json(project_dict(await require_project(state, name)))

    with_state(settings, go)


@project.command("rotate-key")
@click.argument("name")
@click.option("--public", "which", flag_value="public", help="Rotate only the public key.")
@click.option("--secret", "which", flag_value="secret", help="Rotate only the secret key.")
@click.option("--json", "as_json", is_flag=True, help="Print the new key(s) as JSON.")
@settings_options(STORAGE_FIELDS)
def rotate(name: str, which: str | None, as_json: bool, **kwargs: Any) -> None:
    """Replace a project's keys (both unless --public or --secret); old keys stop working."""
    settings = pop_settings(kwargs)
    kinds: list[KeyKind] = ["public", "secret"] if which is None else [which]  # type: ignore[list-item]

    async def go(state: AppState) -> None:
        p = await require_project(state, name)
        new: dict[str, str] = {}
        async with state.db.write() as conn:
            for kind in kinds:
                new[f"{kind}_key"] = await rotate_key(conn, p.id, kind)
        if as_json:
            print_json({"id": p.id, "name": p.name, **new})
        else:
            for label, key in new.items():
                click.echo(f"new {label.replace('_', ' ')}: {key}")

    with_state(settings, go)


@project.command("set")
@click.argument("name")
@click.option(
    "--origin", "add", multiple=True, help="Allow a browser origin (repeatable; * = any)."
)
@click.option("--remove-origin", "remove", multiple=True, help="Stop allowing an origin.")
@settings_options(STORAGE_FIELDS)
def set_(name: str, add: tuple[str, ...], remove: tuple[str, ...], **kwargs: Any) -> None:
    """Change a project's settings: its allowed browser origins (CORS)."""
    settings = pop_settings(kwargs)
    try:
        to_add = [normalize_origin(o) for o in add]
        to_remove = [normalize_origin(o) for o in remove]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not to_add and not to_remove:
        raise click.UsageError("nothing to change: give --origin or --remove-origin")

    async def go(state: AppState) -> None:
        p = await require_project(state, name)
        async with state.db.write() as conn:
            origins = await set_origins(conn, p.id, add=to_add, remove=to_remove)
        click.echo(f"{p.name}: allowed origins: {', '.join(origins) or '(none)'}")

    with_state(settings, go)
