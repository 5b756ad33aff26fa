"""Table definitions. Importing this package registers every table on :data:`metadata`."""

from fieldreport.storage.schema import accounts, backend_events, core, delivery, sessions
from fieldreport.storage.schema.base import UTCDateTime, metadata, utcnow

__all__ = [
    "UTCDateTime",
    "accounts",
    "backend_events",
    "core",
    "delivery",
    "metadata",
    "sessions",
    "utcnow",
]
