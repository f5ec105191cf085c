"""The spool holds prompts and answers: only its owner may read it."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from lucidtrace.tracer.spool import Spool


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_directories_are_0700_and_segments_0600_whatever_the_umask(spool_dir: Path) -> None:
    old = os.umask(0o000)
    try:
        spool = Spool(spool_dir, max_bytes=1 << 20)
        name = spool.append(b"payload", 1)
        assert name is not None
        claim = spool.claim(name)
        assert claim is not None
        dead = spool.dead_letter(claim, "refused")
    finally:
        os.umask(old)
    for directory in (spool_dir, spool.segments_dir, spool.dead_dir, spool.corrupt_dir):
        assert _mode(directory) == 0o700, directory
    assert _mode(dead) == 0o600
    assert _mode(dead.with_name(dead.name + ".reason.txt")) == 0o600
    again = Spool(spool_dir, max_bytes=1 << 20).append(b"more", 1)
    assert again is not None
    assert _mode(spool.segments_dir / again) == 0o600


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_older_spool_open_to_others_is_closed(spool_dir: Path) -> None:
    (spool_dir / "segments").mkdir(parents=True)
    (spool_dir / "segments").chmod(0o755)
    spool = Spool(spool_dir, max_bytes=1 << 20)
    assert _mode(spool.segments_dir) == 0o700
