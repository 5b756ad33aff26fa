"""Delivery: the transactional outbox, payload formats, transports and the worker."""
