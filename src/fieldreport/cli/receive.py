"""``fieldreport receive``: the reference receiver."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from fieldreport.delivery.receiver import ReceiverConfig, receiver_app
from fieldreport.delivery.signing import check_secret


@click.command()
@click.option(
    "--dir",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where each report gets its own directory.",
)
@click.option("--token", default=None, help="Refuse pushes without this security token.")
@click.option("--secret", default=None, help="whsec_… key: refuse unsigned json/xml pushes.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on.")
def receive(out: Path, token: str | None, secret: str | None, host: str, port: int) -> None:
    """Receive pushes (multipart, json, xml) and write each report into its own directory:
    the fields as fields.json, the screenshot, report.pdf and backendlog.json when present.

    A bad token or signature is answered 500 "no access", like the seed's PHP script.
    """
    if secret is not None:
        try:
            check_secret(secret)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--secret") from None
    app = receiver_app(ReceiverConfig(out=out, token=token, secret=secret))
    click.echo(f"fieldreport receive: writing reports to {out.resolve()}")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
