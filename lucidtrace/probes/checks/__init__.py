"""Faithfulness checks: the interface (``base``), the registry and the built-in checks."""

__all__: list[str] = []
