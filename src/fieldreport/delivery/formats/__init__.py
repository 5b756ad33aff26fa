"""Payload formats for HTTP destinations: multipart (seed 000), json (Standard Webhooks), xml
(seed 003, with the rendered PDF inside)."""

FORMATS = ("multipart", "json", "xml")
