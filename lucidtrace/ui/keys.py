"""Projects and API keys: create, look up, list and revoke (store functions, no web framework).

A key reads ``lt_<prefix>_<secret>``: ``prefix`` is 12 random hex digits that name the key in
lists and in ``lucidtrace keys revoke``; ``secret`` is 256 random bits. Only the SHA-256 of the
whole key is stored. A plain hash is enough for keys drawn at random with this much entropy (no
dictionary or brute force can invert it; slow password hashes exist for guessable passwords and
would cost every request milliseconds). A key is found by its prefix, then its hash is compared
in constant time (:func:`hmac.compare_digest`).

Projects are created on demand by name; a project's id is its name, so ``lucidtrace --project
NAME`` reads what a key of that project ingested.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lucidtrace.store.models import ApiKey
from lucidtrace.store.repository import ensure_project

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "ApiKeyError",
    "KeyInfo",
    "create_key",
    "hash_key",
    "list_keys",
    "lookup_key",
    "revoke_key",
    "touch_key",
    "validate_project_name",
]

KEY_PREFIX = "lt"
"""Every key starts with ``lt_``, so secret scanners and people can tell what it is."""

SCOPES = ("ingest", "read")
"""What a key may do: send spans (``ingest``), read traces and sign in to the UI (``read``)."""

LAST_USED_RESOLUTION_NS = 60 * 1_000_000_000
"""``last_used_ns`` is written at most once a minute per key (a write per request would not)."""

_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY = re.compile(r"lt_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")


class ApiKeyError(ValueError):
    """A key or project request that cannot be done (the message says why)."""


@dataclass(frozen=True)
class KeyInfo:
    """An API key as listed: never its secret, nor its hash."""

    id: int
    project_id: str
    prefix: str
    name: str | None
    scopes: tuple[str, ...]
    created_ns: int
    revoked_ns: int | None
    last_used_ns: int | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        """The listing form of a stored key."""
        return cls(
            id=row.id,
            project_id=row.project_id,
            prefix=row.prefix,
            name=row.name,
            scopes=tuple(str(scope) for scope in row.scopes or ()),
            created_ns=row.created_ns,
            revoked_ns=row.revoked_ns,
            last_used_ns=row.last_used_ns,
        )


def validate_project_name(name: str) -> str:
    """``name`` when it can name a project (and be its id), else a :class:`ApiKeyError`."""
    if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
        raise ApiKeyError(
            f"project name {name!r:.80} is not valid: use 1-64 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    session: Session,
    project_name: str,
    *,
    name: str | None = None,
    scopes: tuple[str, ...] = SCOPES,
) -> tuple[str, ApiKey]:
    """Create a key for a project (created when missing). The caller commits.

    Returns:
        The key, in plain text (shown once: only its hash is stored), and its row.

    Raises:
        ApiKeyError: The project name or a scope is not valid.
    """
    project_id = validate_project_name(project_name)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyError(f"scopes must be some of {', '.join(SCOPES)}, got {', '.join(scopes)}")
    ensure_project(session, project_id=project_id, name=project_id)
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        project_id=project_id,
        key_hash=hash_key(key),
        prefix=prefix,
        name=name,
        scopes=[scope for scope in SCOPES if scope in scopes],
        created_ns=time.time_ns(),
        revoked_ns=None,
        last_used_ns=None,
    )
    session.add(row)
    session.flush()
    return key, row


def lookup_key(session: Session, key: str, *, include_revoked: bool = False) -> ApiKey | None:
    """The key row matching ``key`` (``None`` when unknown, or revoked unless asked for).

    The row is found by the key's prefix; the hash is compared in constant time.
    """
    match = _KEY.fullmatch(key.strip()) if isinstance(key, str) else None
    if match is None:
        return None
    wanted = hash_key(key.strip())
    found: ApiKey | None = None
    for row in session.scalars(sa.select(ApiKey).where(ApiKey.prefix == match.group(1))):
        if hmac.compare_digest(row.key_hash, wanted) and (
            include_revoked or row.revoked_ns is None
        ):
            found = row
    return found


def touch_key(session: Session, row: ApiKey, *, now_ns: int | None = None) -> bool:
    """Record that a key was used (at most once a minute). Returns whether a write was made."""
    now = time.time_ns() if now_ns is None else now_ns
    if row.last_used_ns is not None and now - row.last_used_ns < LAST_USED_RESOLUTION_NS:
        return False
    row.last_used_ns = now
    return True


def list_keys(session: Session, *, project_id: str | None = None) -> list[KeyInfo]:
    """Keys (all projects, or one), oldest first; revoked ones included and marked."""
    query = sa.select(ApiKey).order_by(ApiKey.created_ns, ApiKey.id)
    if project_id is not None:
        query = query.where(ApiKey.project_id == project_id)
    return [KeyInfo.of(row) for row in session.scalars(query)]


def revoke_key(session: Session, prefix: str) -> KeyInfo:
    """Revoke the key with this prefix (its sessions end too). The caller commits.

    Raises:
        ApiKeyError: No key, or more than one live key, has this prefix.
    """
    text = prefix.strip().lower()
    if text.startswith(f"{KEY_PREFIX}_"):
        text = text.split("_")[1] if text.count("_") >= 1 else text
    rows = list(session.scalars(sa.select(ApiKey).where(ApiKey.prefix == text)))
    if not rows:
        raise ApiKeyError(f"no API key with prefix {prefix!r:.40}: see `lucidtrace keys list`")
    live = [row for row in rows if row.revoked_ns is None]
    if len(live) > 1:
        raise ApiKeyError(f"several keys have prefix {text!r}; revoke them in the database")
    row = live[0] if live else rows[0]
    if row.revoked_ns is None:
        row.revoked_ns = time.time_ns()
        session.flush()
    return KeyInfo.of(row)
