"""``fieldreport user ...`` as a real subprocess."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.support.proc import fieldreport_cmd, subprocess_env


def _run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fieldreport_cmd(*args, "--data-dir", str(data_dir)),
        input=stdin,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
    )


def test_user_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(data, "project", "create", "acme").returncode == 0
    made = _run(data, "user", "create", "Admin@Example.com", "--admin", "--generate-password")
    assert made.returncode == 0, made.stderr
    one_time = re.search(r"One-time password: (\S+)", made.stdout)
    assert one_time and len(one_time.group(1)) >= 12
    assert "admin@example.com" in made.stdout

    piped = _run(
        data, "user", "create", "bob@example.com", "--project", "acme", stdin="a long password\n"
    )
    assert piped.returncode == 0, piped.stderr
    assert "One-time" not in piped.stdout and "a long password" not in piped.stdout
    assert "Member of: acme" in piped.stdout

    assert (
        _run(data, "user", "create", "bob@example.com", stdin="another long one\n").returncode == 1
    )
    short = _run(data, "user", "create", "c@example.com", stdin="short\n")
    assert short.returncode == 1 and "at least 10" in short.stderr
    assert _run(data, "user", "create", "not-an-email", "--generate-password").returncode == 1
    assert (
        _run(
            data, "user", "create", "d@example.com", "--project", "nope", "--generate-password"
        ).returncode
        == 1
    )

    listed = json.loads(_run(data, "user", "list", "--json").stdout)
    assert [(u["email"], u["admin"]) for u in listed] == [
        ("admin@example.com", True),
        ("bob@example.com", False),
    ]
    assert "password" not in json.dumps(listed)

    assert _run(data, "user", "member", "admin@example.com", "acme").returncode == 0
    assert _run(data, "user", "member", "bob@example.com", "acme", "--remove").returncode == 0
    reset = _run(data, "user", "set-password", "bob@example.com", "--generate-password")
    assert reset.returncode == 0 and "One-time password:" in reset.stdout
    assert _run(data, "user", "delete", "bob@example.com").returncode == 0
    assert "bob@" not in _run(data, "user", "list").stdout
    assert _run(data, "user", "delete", "bob@example.com").returncode == 1


def test_one_time_password_logs_in_to_a_served_dashboard(tmp_path: Path) -> None:
    """The whole path: CLI user, `fieldreport serve`, login, forced password change."""
    import socket
    import time

    data = tmp_path / "data"
    made = _run(data, "user", "create", "ops@example.com", "--admin", "--generate-password")
    password = re.search(r"One-time password: (\S+)", made.stdout).group(1)  # type: ignore[union-attr]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        fieldreport_cmd("serve", "--data-dir", str(data), "--port", str(port)),
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        with httpx.Client(base_url=base) as client:
            page = client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            resp = client.post(
                "/login", data={"email": "ops@example.com", "password": password, "csrf": csrf}
            )
            assert resp.status_code == 303
            assert resp.headers["location"] == "/account/password"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
