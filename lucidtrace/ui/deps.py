"""Dependencies shared by the routes: the store session."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.orm import Session

from lucidtrace.ui.settings import ServerSettings

__all__ = ["db_session", "engine_of", "settings_of"]


def engine_of(request: Request) -> sa.Engine:
    """The app's store engine."""
    engine: sa.Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> ServerSettings:
    """The app's settings."""
    settings: ServerSettings = request.app.state.settings
    return settings


def db_session(request: Request) -> Iterator[Session]:
    """A session on the store for one request (read routes; writers commit themselves)."""
    with Session(engine_of(request), expire_on_commit=False) as session:
        yield session
