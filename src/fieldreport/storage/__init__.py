"""Storage layer: the database (SQLAlchemy Core, async) and the blob store."""
