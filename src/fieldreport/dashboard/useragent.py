"""A readable browser and OS from a User-Agent string (ua-parser's regexes)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse


@dataclass(frozen=True)
class ParsedAgent:
    browser: str  # "Chrome 120.0" or ""
    os: str  # "Windows 10" or ""
    device: str  # "iPhone" or "" (desktops have none)


def _version(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


@lru_cache(maxsize=1024)
def parse_agent(ua: str) -> ParsedAgent:
    if not ua:
        return ParsedAgent("", "", "")
    result = parse(ua[:2000])
    browser = os_name = device = ""
    if result.user_agent is not None and result.user_agent.family != "Other":
        ua_info = result.user_agent
        browser = f"{ua_info.family} {_version(ua_info.major, ua_info.minor)}".strip()
    if result.os is not None and result.os.family != "Other":
        os_info = result.os
        os_name = (
            f"{os_info.family} {_version(os_info.major, os_info.minor, os_info.patch)}".strip()
        )
    if result.device is not None and result.device.family not in ("Other", "Spider"):
        device = result.device.family
    return ParsedAgent(browser, os_name, device)
