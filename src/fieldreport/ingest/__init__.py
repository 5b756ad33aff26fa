"""The HTTP APIs the field talks to: reports, session recordings, backend events."""
