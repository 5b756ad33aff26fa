"""Transports: how a rendered report reaches a destination (HTTP, email, FTP, SFTP)."""
