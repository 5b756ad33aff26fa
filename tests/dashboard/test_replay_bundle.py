"""The committed replay bundle is what web/dashboard builds from its pinned sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web" / "dashboard"
STATIC = ROOT / "src" / "fieldreport" / "dashboard" / "static"


def test_rrweb_player_is_pinned_in_package_and_lock() -> None:
    package = json.loads((WEB / "package.json").read_text())
    assert package["devDependencies"]["rrweb-player"] == "2.1.6"
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/rrweb-player"]["version"] == "2.1.6"
    for name in ("@rrweb/replay", "@rrweb/packer", "rrweb"):
        assert lock["packages"][f"node_modules/{name}"]["version"] == "2.1.6"


@pytest.mark.skipif(
    shutil.which("node") is None or not (WEB / "node_modules" / "esbuild").exists(),
    reason="needs node and `npm ci` in web/dashboard",
)
def test_bundle_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        ["node", "build.mjs"],
        cwd=WEB,
        env={**os.environ, "REPLAY_OUT_DIR": str(tmp_path)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in ("replay.js", "replay.css"):
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), name
