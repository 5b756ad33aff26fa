"""Which transport serves a destination URL, by its scheme.

HTTP(S) is built in (it renders the multipart/json/xml formats itself). Every other transport
is a module with ``async def send(url, bundle, *, token, timeout, allow_private) -> SendResult``
and ``def check_url(url) -> None`` (ValueError with a clear message, never the secrets), and
plugs in with one ``register`` line below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

HTTP_SCHEMES = ("http", "https")
KNOWN_ELSEWHERE = {
    "smtp": "email",
    "smtps": "email",
    "ftp": "FTP",
    "ftps": "FTP",
    "sftp": "SFTP",
}
PLUGINS: dict[str, str] = {}


def register(module: str, *schemes: str) -> None:
    for scheme in schemes:
        PLUGINS[scheme] = module


register("fieldreport.delivery.transports.email", "smtp", "smtps")
register("fieldreport.delivery.transports.ftp", "ftp")
register("fieldreport.delivery.transports.sftp", "sftp")


def supported_schemes() -> list[str]:
    return [*HTTP_SCHEMES, *sorted(PLUGINS)]


def plugin_for(scheme: str) -> ModuleType:
    """The transport module for a non-HTTP scheme; ValueError when none is registered."""
    module = PLUGINS.get(scheme)
    if module is None:
        what = KNOWN_ELSEWHERE.get(scheme)
        supported = ", ".join(s + "://" for s in supported_schemes())
        if what:
            raise ValueError(
                f"{scheme}:// destinations ({what}) are not available in this installation; "
                f"supported: {supported}"
            )
        raise ValueError(f"unsupported destination scheme {scheme!r}; supported: {supported}")
    return importlib.import_module(module)
