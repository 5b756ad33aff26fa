"""Rendering a report into a document a person reads (PDF)."""
