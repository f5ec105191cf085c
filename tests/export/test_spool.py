"""The on-disk spool: group commit, order, cap, damaged files, claims between processes."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lucidtrace.tracer.spool import CorruptSegmentError, Spool, default_spool_dir, encode_segment


def _payload(text: str) -> bytes:
    return gzip.compress(json.dumps({"format": "lucidtrace.spans.v1", "spans": [text]}).encode())


def test_a_batch_is_one_durable_segment_read_back_whole(spool_dir: Path) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 20)
    name = spool.append(_payload("a"), 3)
    assert name is not None
    files = sorted(os.listdir(spool.segments_dir))
    assert files == [name]  # no temporary file left behind
    claim = spool.claim(name)
    assert claim is not None
    with claim:
        segment = claim.read()
    assert segment.spans == 3
    assert json.loads(gzip.decompress(segment.payload))["spans"] == ["a"]
    assert spool.pending_spans == 3


def test_segments_are_listed_in_the_order_they_were_written(spool_dir: Path) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 20)
    names = [spool.append(_payload(str(i)), 1) for i in range(20)]
    assert spool.list_ready() == names
    # A second process (another Spool on the same directory) sees the same order.
    assert Spool(spool_dir, max_bytes=1 << 20).list_ready() == names


def test_the_cap_refuses_batches_past_it_and_frees_room_when_sent(spool_dir: Path) -> None:
    one = len(encode_segment(_payload("x" * 100), 1))
    spool = Spool(spool_dir, max_bytes=one * 3)
    written = [spool.append(_payload("x" * 100), 1) for _ in range(5)]
    assert [name is not None for name in written] == [True, True, True, False, False]
    assert spool.size_bytes <= spool.max_bytes
    first = written[0]
    assert first is not None
    claim = spool.claim(first)
    assert claim is not None
    with claim:
        spool.remove(claim)
    assert spool.append(_payload("x" * 100), 1) is not None


def test_the_tally_counts_segments_left_by_an_earlier_run(spool_dir: Path) -> None:
    earlier = Spool(spool_dir, max_bytes=1 << 20)
    for _ in range(4):
        earlier.append(_payload("y"), 5)
    later = Spool(spool_dir, max_bytes=1 << 20)
    assert later.pending_spans == 20
    assert later.size_bytes == earlier.size_bytes


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[: len(data) - 7], "cut short"),
        (lambda data: data[:10], "header"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), "checksum"),
        (lambda data: b"garbage!" + data[8:], "magic"),
    ],
)
def test_a_damaged_segment_is_detected(
    spool_dir: Path, damage: Callable[[bytes], bytes], reason: str
) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 20)
    name = spool.append(_payload("z" * 50), 1)
    assert name is not None
    path = spool.segments_dir / name
    path.write_bytes(damage(path.read_bytes()))
    claim = spool.claim(name)
    assert claim is not None
    with claim, pytest.raises(CorruptSegmentError, match=reason):
        claim.read()
    with claim:
        target = spool.quarantine(claim, "damaged")
    assert target.exists()  # kept aside for inspection, not deleted
    assert spool.list_ready() == []


def test_an_unfinished_write_of_a_dead_writer_is_moved_aside(spool_dir: Path) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 20)
    stale = spool.segments_dir / ".tmp-99999-00000000000000000001-99999-00000000.seg"
    stale.write_bytes(b"half a segm")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = spool.segments_dir / ".tmp-99999-00000000000000000002-99999-00000000.seg"
    fresh.write_bytes(b"being written right now")
    assert spool.list_ready() == []
    assert not stale.exists()
    assert [p.name for p in spool.corrupt_dir.iterdir() if not p.name.endswith(".txt")] == [
        "99999-00000000000000000001-99999-00000000.seg"
    ]
    assert fresh.exists()  # a write in progress (maybe another process's) is left alone


def test_one_segment_is_claimed_by_one_sender_at_a_time(spool_dir: Path) -> None:
    first = Spool(spool_dir, max_bytes=1 << 20)
    second = Spool(spool_dir, max_bytes=1 << 20)  # another process sharing the directory
    name = first.append(_payload("c"), 1)
    assert name is not None
    claim = first.claim(name)
    assert claim is not None
    assert second.claim(name) is None
    first.remove(claim)
    claim.release()
    assert second.claim(name) is None  # sent and deleted: nothing to claim


def test_a_claim_on_a_segment_deleted_meanwhile_is_refused(spool_dir: Path) -> None:
    spool = Spool(spool_dir, max_bytes=1 << 20)
    name = spool.append(_payload("d"), 1)
    assert name is not None
    os.unlink(spool.segments_dir / name)
    assert spool.claim(name) is None


def test_an_unwritable_spool_directory_fails_at_once(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(NotADirectoryError):
        Spool(blocker / "spool", max_bytes=1 << 20)


def test_the_default_directory_is_per_endpoint_under_the_cache_dir(tmp_path: Path) -> None:
    one = default_spool_dir("http://a:6006")
    assert one == default_spool_dir("http://a:6006/")
    assert one != default_spool_dir("http://b:6006")
    assert one.is_relative_to(tmp_path / "cache" / "lucidtrace" / "spool")
