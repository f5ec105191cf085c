"""The app's routers, one module per area."""

__all__: list[str] = []
