"""Masking: one hook that rewrites every text field of every span before it is exported.

The built-in patterns catch common secret formats and replace each with a readable marker::

    >>> mask_secrets("key=sk-proj-abcdefghijklmnopqrstuvwx")
    'key=[REDACTED:openai-key]'

User callables (``str -> str``) run after the built-ins, on the span name, every string
attribute (and every string inside an array attribute), every event attribute, link attributes
and the status description. A callable that raises or returns something other than a string
does not leak the value: the field becomes ``[REDACTED:mask-error]`` and the failure is logged
once. Values that were JSON stay valid JSON: the built-in patterns never span a quote or a
backslash, and when a user callable breaks a JSON document it is applied to the document's
string leaves instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lucidtrace.tracer import semconv
from lucidtrace.tracer._log import log_once

MaskFn = Callable[[str], str]
"""A masking callable: takes a text, returns it with whatever must not be stored replaced."""

MASK_ERROR: str = "[REDACTED:mask-error]"
"""What a field becomes when a user masking callable fails on it."""

SECRET_VALUE: str = "[REDACTED:secret-value]"
"""What the value of an attribute named like a secret (``...api_key``, ``...password``) becomes."""

# Each alternative is one named group `k_<kind>`; label/prefix groups keep the readable part
# ("Bearer ", "aws_secret_access_key=") and only the secret is replaced. No pattern matches a
# double quote or a backslash inside the secret, so masking a JSON document keeps it valid.
_TOKEN = r"[A-Za-z0-9_\-]"
# A key glued to a prefix (``sess-sk-proj-...``) is recognised by its random body (digits, upper
# and lower case), so that words such as ``task-skills-for-the-agent`` are not; a key that
# starts a word needs no more than its prefix and length.
_RANDOM = r"(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*[A-Z])(?=[A-Za-z0-9_\-]*[a-z])"
# Keys whose value is a secret whatever it looks like (OAuth responses, configs, headers).
SECRET_KEY_NAMES = (
    r"(?:[A-Za-z0-9.\-]*[_\-.])?(?:access|refresh|id|auth|session|bearer)?[_\-]?token"
    r"|[A-Za-z0-9_.\-]*(?:api[_\-]?key|secret|passw(?:or)?d|authorization|credentials?)"
    r"[A-Za-z0-9_.\-]*"
)
_SECRET_KEY = re.compile(rf"(?i:{SECRET_KEY_NAMES})")
_SECRETS = re.compile(
    rf"""
    (?P<k_anthropic_key>sk-ant-(?:(?<![A-Za-z0-9_\-]sk-ant-)|{_RANDOM}){_TOKEN}{{20,}})
  | (?P<k_openai_key>sk-(?:(?<![A-Za-z0-9_\-]sk-)|{_RANDOM}){_TOKEN}{{20,}})
  | (?P<k_aws_access_key_id>(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{{16}}(?![A-Za-z0-9]))
  | (?P<k_aws_secret_access_key>
        (?P<p_aws>(?i:aws[_\-. ]?secret[_\-. ]?(?:access[_\-. ]?)?key)[\s"'\\:=]{{1,8}})
        [A-Za-z0-9/+=]{{40}}(?![A-Za-z0-9/+=]))
  | (?P<k_bearer_token>(?P<p_bearer>\b[Bb]earer(?:\s|\\[tnr])+)[A-Za-z0-9._~+/=\-]{{16,}})
  | (?P<k_github_token>(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{{36,}}|github_pat_\w{{40,}}))
  | (?P<k_google_api_key>(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{{35}})
  | (?P<k_slack_token>(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9\-]{{10,}})
  | (?P<k_private_key>-----BEGIN[A-Z\ ]{{0,20}}PRIVATE\ KEY-----
        [^"]*?-----END[A-Z\ ]{{0,20}}PRIVATE\ KEY-----)
  | (?P<k_secret_value>
        (?P<p_kv>(?<![A-Za-z0-9_.\-])(?P<q_kv>\\{{0,8}}["']|)(?i:{SECRET_KEY_NAMES})(?P=q_kv)
            \s*[:=]\s*\\{{0,8}}["'])
        (?![Bb]earer\s)[^"'\\\n]{{6,}}(?=\\{{0,8}}["']))
    """,
    re.VERBOSE,
)
# Scanning with the full pattern costs ~20x more than this literal pre-check, and almost no
# text holds a secret. The shortest match of any pattern (a Slack token) is 15 characters.
_CANDIDATE = re.compile(
    r"sk-|AKIA|ASIA|ecret|ECRET|earer|gh[pousr]_|github_pat_|AIza|xox|PRIVATE KEY"
    r"|(?i:token|passw|authoriz|api.?key|credential)"
)
MIN_SECRET_CHARS = 15
"""Texts shorter than this cannot hold a secret the built-in patterns recognise."""
# Values every lucidtrace span carries (kinds, operation names): known not to be secrets.
_KNOWN_VALUES = frozenset(semconv.SPAN_KINDS) | frozenset(semconv.KIND_TO_OPERATION.values())
_UNMASKED_TYPES = frozenset({int, float, bool, type(None), bytes})
_PREFIX_GROUP = {
    "k_aws_secret_access_key": "p_aws",
    "k_bearer_token": "p_bearer",
    "k_secret_value": "p_kv",
}

SECRET_KINDS: tuple[str, ...] = tuple(
    name[2:].replace("_", "-") for name in _SECRETS.groupindex if name.startswith("k_")
)
"""The kinds of secret the built-in patterns recognise (the ``X`` of ``[REDACTED:X]``)."""


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup or "k_secret"
    marker = f"[REDACTED:{kind[2:].replace('_', '-')}]"
    prefix = _PREFIX_GROUP.get(kind)
    return match.group(prefix) + marker if prefix else marker


def _is_secret_key(key: str) -> bool:
    """Whether an attribute key names a secret (its last dotted part, e.g. ``...authorization``)."""
    return _SECRET_KEY.fullmatch(key.rsplit(".", 1)[-1]) is not None


def mask_secrets(text: str) -> str:
    """Replace every secret the built-in patterns recognise with ``[REDACTED:<kind>]``.

    Recognised: OpenAI keys (``sk-``, ``sk-proj-``), Anthropic keys (``sk-ant-``), AWS access key
    ids (``AKIA``/``ASIA``) and secret access keys next to their label, bearer tokens (also after a
    JSON-escaped tab or newline), GitHub, Google API and Slack tokens, PEM private keys, and the
    quoted value of a key named like a secret (``"access_token": "..."``, ``'password': '...'``,
    ``api_key="..."``), in JSON, escaped JSON and Python reprs.
    """
    if len(text) < MIN_SECRET_CHARS or _CANDIDATE.search(text) is None:
        return text
    return _SECRETS.sub(_replace, text)


class Masker:
    """The masking pipeline: the built-in patterns (optional), then the user's callables.

    Args:
        mask: User callables, applied in order after the built-ins.
        mask_defaults: Apply :func:`mask_secrets` first.
    """

    def __init__(self, mask: Sequence[MaskFn] = (), *, mask_defaults: bool = True) -> None:
        for fn in mask:
            if not callable(fn):
                msg = f"mask= takes callables (str -> str); got {fn!r}"
                raise TypeError(msg)
        self._user = tuple(mask)
        self._defaults = mask_defaults
        self.short_is_safe = mask_defaults and not self._user
        """Whether texts shorter than :data:`MIN_SECRET_CHARS` can be skipped."""
        self.active = mask_defaults or bool(self._user)
        """Whether masking can change anything at all (the processor skips it when not)."""

    def _apply(self, text: str) -> str:
        if self._defaults:
            text = mask_secrets(text)
        for fn in self._user:
            try:
                out = fn(text)
            except Exception:  # fail closed: a broken mask must not let the value through
                log_once(
                    f"mask:{getattr(fn, '__qualname__', fn)!s}",
                    "lucidtrace mask callable %r raised; the field is stored as %s",
                    fn,
                    MASK_ERROR,
                    exc_info=True,
                )
                return MASK_ERROR
            if not isinstance(out, str):
                log_once(
                    f"mask-type:{getattr(fn, '__qualname__', fn)!s}",
                    "lucidtrace mask callable %r returned %s, not str; the field is stored as %s",
                    fn,
                    type(out).__name__,
                    MASK_ERROR,
                )
                return MASK_ERROR
            text = out
        return text

    def mask_text(self, text: str) -> str:
        """Mask one text; a JSON document stays a valid JSON document."""
        out = self._apply(text)
        if out == text or not self._user or text[:1] not in ("{", "[", '"'):
            return out
        try:
            document = json.loads(text)
        except ValueError:
            return out  # it was not JSON to begin with
        try:
            json.loads(out)
        except ValueError:
            # A user callable broke the document's syntax: mask its string leaves instead.
            return json.dumps(self._mask_leaves(document), ensure_ascii=False)
        return out

    def _mask_leaves(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._apply(value)
        if isinstance(value, list):
            return [self._mask_leaves(v) for v in value]
        if isinstance(value, dict):
            return {self._apply(k): self._mask_leaves(v) for k, v in value.items()}
        return value

    def mask_value(self, value: Any) -> Any:
        """Mask an attribute value: a string, or the strings of a sequence or mapping.

        Returns:
            The same object when nothing changed, so callers can test with ``is``.
        """
        if isinstance(value, str):
            # Most values are short identifiers; skipping them keeps masking off the hot path's
            # GIL budget (the worker thread competes with the agent for it).
            if self.short_is_safe and len(value) < MIN_SECRET_CHARS:
                return value
            out = self.mask_text(value)
            return value if out == value else out
        if type(value) in _UNMASKED_TYPES:
            return value
        if isinstance(value, Mapping):
            items = {k: self.mask_value(v) for k, v in value.items()}
            return value if all(items[k] is v for k, v in value.items()) else items
        if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
            masked = tuple(self.mask_value(v) for v in value)
            return value if all(m is v for m, v in zip(masked, value, strict=True)) else masked
        return value

    def mask_attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        """A masked copy of ``attributes``, or None when masking changes nothing."""
        out: dict[str, Any] | None = None
        short_is_safe = self.short_is_safe
        for key, value in attributes.items():
            if self._defaults and type(value) is str and value and _is_secret_key(key):
                if out is None:
                    out = dict(attributes)
                out[key] = SECRET_VALUE
                continue
            if (
                short_is_safe
                and type(value) is str
                and (len(value) < MIN_SECRET_CHARS or value in _KNOWN_VALUES)
            ):
                continue
            masked = self.mask_value(value)
            if masked is not value:
                if out is None:
                    out = dict(attributes)
                out[key] = masked
        return out
