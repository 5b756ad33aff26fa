"""fieldreport: collect bug reports from the field and push them where your team works."""

__version__ = "0.1.0"
