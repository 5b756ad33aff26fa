"""One typed settings object, read from ``FIELDREPORT_*`` environment variables.

Every field is also a ``fieldreport serve`` flag (``--max-report-bytes``)
and is documented in the README's settings table (a test enforces both).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fieldreport.units import parse_duration, parse_size

MiB = 1024 * 1024


class Settings(BaseSettings):
    """fieldreport's configuration. Defaults give the embedded mode: SQLite + local files."""

    model_config = SettingsConfigDict(env_prefix="FIELDREPORT_", extra="forbid")

    # --- core -------------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path("fieldreport-data"),
        description="Directory for the SQLite database, local blobs and the server secret.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the HTTP server binds to.")
    database_url: str | None = Field(
        default=None,
        description="Database URL: `sqlite:///path.db` or `postgresql://user:pass@host/db`. "
        "Default: `DATA_DIR/fieldreport.db` (SQLite).",
    )
    blob_url: str | None = Field(
        default=None,
        description="Blob store: a directory (`file:///srv/blobs`) or `s3://bucket/prefix`. "
        "Default: `DATA_DIR/blobs`.",
    )
    s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint URL for S3-compatible stores (MinIO, SeaweedFS...)."
    )
    s3_region: str | None = Field(default=None, description="S3 region (e.g. `us-east-1`).")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    public_url: str | None = Field(
        default=None,
        description="Public base URL of this server, used in `ticketurl` links. "
        "Default: `http://HOST:PORT`.",
    )
    max_report_bytes: int = Field(
        default=20 * MiB,
        gt=0,
        description="Largest accepted report request (screenshot, attachments and fields), "
        "e.g. `20MiB`; larger ones get 413.",
    )
    ingest_max_in_flight: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Requests one process handles at once on each ingest route; the next "
        "ones get 503 with `Retry-After` at once instead of queueing in memory when the "
        "database or blob store is slow.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses/CIDRs of reverse proxies whose "
        "`X-Forwarded-For` is believed for the client IP. Default: none.",
    )
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log format: `text`, or `json` (one object per line)."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, `/metrics` requires `Authorization: Bearer <token>`.",
    )
    shutdown_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Seconds to let in-flight requests finish after SIGTERM/SIGINT, e.g. `30s`.",
    )
    database_wait: float = Field(
        default=60.0,
        ge=0,
        description="How long `serve` and `worker` wait at start-up for a database that is not "
        "reachable yet (e.g. PostgreSQL starting beside them), e.g. `60s`; `0` stops at once. "
        "Other commands never wait.",
    )

    # --- dashboard --------------------------------------------------------------------------
    login_max_age: float = Field(
        default=14 * 86400.0,
        gt=0,
        description="How long a dashboard login lasts (its session cookie), e.g. `14d`.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed dashboard logins allowed per account within `LOGIN_WINDOW` "
        "(four times as many per client IP); more are refused with 429.",
    )
    login_window: float = Field(
        default=900.0,
        gt=0,
        description="The sliding window for `LOGIN_MAX_FAILURES`, e.g. `15m`.",
    )

    # --- delivery ---------------------------------------------------------------------------
    allow_private_destinations: bool = Field(
        default=False,
        description="Allow destinations that resolve to loopback, private, link-local or "
        "cloud-metadata addresses (on-premise receivers, tests). Default: refused.",
    )
    delivery_concurrency: int = Field(
        default=64, ge=1, le=4096, description="Deliveries one worker sends at the same time."
    )
    delivery_per_destination: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Deliveries one worker sends to the same destination at the same time.",
    )
    delivery_lease: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed delivery stays with its worker without a heartbeat; "
        "after that (a dead worker) another worker takes it over, e.g. `60s`.",
    )
    delivery_poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="How often an idle worker looks for due deliveries (new reports accepted "
        "by the same process wake it at once), e.g. `1s`.",
    )
    delivery_link_ttl: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="How long the signed file links in JSON pushes stay valid, e.g. `7d`.",
    )

    # --- full-stack API (backend events) -------------------------------------------------------
    fullstack_max_payload_bytes: int = Field(
        default=256 * 1024,
        gt=0,
        description="Largest `payload` (and `metadata`) of one backend event, e.g. `256KiB`; "
        "larger ones are refused with a validation error.",
    )
    fullstack_pending_ttl: float = Field(
        default=600.0,
        ge=0,
        description="How long backend events for a recording that has not started yet are kept "
        "waiting for it, e.g. `10m`; `0` refuses them at once.",
    )
    fullstack_max_pending: int = Field(
        default=10_000,
        ge=0,
        description="Most backend events one project may have waiting for recordings that have "
        "not started yet; past it they are refused.",
    )

    # --- session recording --------------------------------------------------------------
    session_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs session tokens. Default: generated into "
        "`DATA_DIR/session-secret` on first use; set it when several servers share a database.",
    )
    session_max_length: float = Field(
        default=7200.0,
        gt=0,
        description="Longest recording: a session token expires this long after start, e.g. `2h`.",
    )
    session_late_grace: float = Field(
        default=86400.0,
        ge=0,
        description="How long after expiry a token is still accepted by `late` uploads, "
        "e.g. `24h`.",
    )
    session_max_batch_bytes: int = Field(
        default=1 * MiB,
        gt=0,
        description="Largest session batch as sent (after any gzip), e.g. `1MiB`; larger get 413.",
    )
    session_max_inflated_bytes: int = Field(
        default=16 * MiB,
        gt=0,
        description="Largest gzip batch once decompressed, e.g. `16MiB`; more is refused (413).",
    )
    session_max_images_bytes: int = Field(
        default=16 * MiB,
        gt=0,
        description="Largest mobile image upload request (all files), e.g. `16MiB`.",
    )
    session_rate_sessions: int = Field(
        default=600,
        ge=0,
        description="Sessions a project may start per minute (per server process; 0: no limit).",
    )
    session_rate_bytes: int = Field(
        default=256 * MiB,
        ge=0,
        description="Batch bytes a project may send per minute (per server process; 0: no limit), "
        "e.g. `256MiB`.",
    )
    session_retention: float = Field(
        default=0.0,
        ge=0,
        description="Delete session recordings older than this once a day inside the server, "
        "e.g. `30d` (0: never).",
    )

    @field_validator(
        "max_report_bytes",
        "session_max_batch_bytes",
        "session_max_inflated_bytes",
        "session_max_images_bytes",
        "session_rate_bytes",
        "fullstack_max_payload_bytes",
        mode="before",
    )
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator(
        "shutdown_timeout",
        "database_wait",
        "delivery_lease",
        "delivery_poll_interval",
        "delivery_link_ttl",
        "session_max_length",
        "session_late_grace",
        "session_retention",
        "fullstack_pending_ttl",
        "login_max_age",
        "login_window",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    # --- derived ----------------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fieldreport.db').resolve()}"

    @property
    def effective_blob_url(self) -> str:
        if self.blob_url:
            return self.blob_url
        return (self.data_dir / "blobs").resolve().as_uri()

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(item, strict=False) for item in self.trusted_proxies]


def env_var(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return "FIELDREPORT_" + field_name.upper()
