"""kb: a local, offline knowledge base for research papers kept in a Markdown reading list."""

__version__ = "0.1.0"
