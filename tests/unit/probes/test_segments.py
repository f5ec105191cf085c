"""Segments map exactly to token ranges, on adversarial text and through chat templates."""

from __future__ import annotations

import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from lucidtrace.probes.segments import (
    Segment,
    SegmentError,
    check_segments,
    find_segment,
    join_parts,
    map_segments,
    render_chat,
)
from tests.model.tiny import make_tokenizer

pytestmark = pytest.mark.model

WORDS = [
    "the",
    "capital",
    "is",
    "paris",
    "rome",
    "doc",
    "café",
    "naïve",
    "東京",
    "🙂",
    "a",
    "b",
    ".",
]


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer(WORDS)


def _tokens_of(tokenizer, text: str, segments: list[Segment]) -> dict[str, list[str]]:
    encoded = tokenizer(text, return_offsets_mapping=True)
    spans = map_segments(text, encoded["offset_mapping"], segments)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    return {span.name: tokens[span.token_start : span.token_end] for span in spans}


def test_identical_documents_map_to_different_token_ranges(tokenizer) -> None:
    text, segments = join_parts(
        [("doc1", "the capital is paris"), (None, " . "), ("doc2", "the capital is paris")]
    )
    encoded = tokenizer(text, return_offsets_mapping=True)
    first, second = map_segments(text, encoded["offset_mapping"], segments)
    assert first.tokens != second.tokens
    assert first.token_end <= second.token_start
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[first.token_start : first.token_end] == ["the", "capital", "is", "paris"]
    assert tokens[second.token_start : second.token_end] == ["the", "capital", "is", "paris"]


def test_find_segment_picks_the_requested_occurrence() -> None:
    text = "a b a b"
    assert find_segment(text, "x", "a b", occurrence=1) == Segment("x", 4, 7)
    with pytest.raises(SegmentError, match="fewer than 3"):
        find_segment(text, "x", "a b", occurrence=2)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        # combining marks (decomposed e + U+0301), precomposed letters, emoji and CJK
        ([("q", "cafe\u0301 naïve"), (None, " "), ("d", "東京 🙂")], ["東京", "🙂"]),
        # whitespace at the segment edges belongs to no token
        ([("q", "  the capital  "), ("d", "\n\tparis \n")], ["paris"]),
        # touching segments with no separator between them
        ([("q", "a"), ("d", ".")], ["."]),
    ],
)
def test_adversarial_text_round_trips(tokenizer, parts, expected) -> None:
    text, segments = join_parts(parts)
    mapped = _tokens_of(tokenizer, text, segments)
    assert mapped["d"] == expected
    encoded = tokenizer(text, return_offsets_mapping=True)
    for span in map_segments(text, encoded["offset_mapping"], segments):
        # every token of the range lies inside the segment's characters
        for start, end in encoded["offset_mapping"][span.token_start : span.token_end]:
            assert span.start <= start < end <= span.end


def test_bpe_token_with_leading_space_belongs_to_the_segment() -> None:
    # A token that starts with the space before the segment ("Ġparis"-style) still belongs to it.
    text = "the capital is paris"
    offsets = [(0, 3), (3, 11), (11, 14), (14, 20)]  # byte-level BPE keeps leading spaces
    (span,) = map_segments(text, offsets, [find_segment(text, "answer", "paris")])
    assert span.tokens == range(3, 4)


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([Segment("a", 0, 5), Segment("b", 3, 8)], "overlap"),
        ([Segment("a", 0, 50)], "outside"),
        ([Segment("a", 4, 4)], "empty"),
        ([Segment("a", 0, 2), Segment("a", 4, 6)], "unique"),
    ],
)
def test_invalid_segments_are_rejected_with_a_reason(segments, message) -> None:
    with pytest.raises(SegmentError, match=message):
        check_segments(segments, 20)


def test_segment_inside_a_merged_token_is_reported(tokenizer) -> None:
    text = "capital"
    encoded = tokenizer(text, return_offsets_mapping=True)
    with pytest.raises(SegmentError, match="owns no token"):
        map_segments(text, encoded["offset_mapping"], [Segment("a", 0, 3), Segment("b", 3, 7)])


def test_chat_template_offsets_place_segments_in_the_templated_text(tokenizer) -> None:
    user = "user doc the capital is paris"  # "user" is also a role tag in the template
    prompt = render_chat(
        tokenizer,
        [{"role": "system", "content": "a b"}, {"role": "user", "content": user}],
    )
    (placed,) = prompt.place([find_segment(user, "doc", "the capital is paris")])
    assert prompt.text[placed.start : placed.end] == "the capital is paris"
    (who,) = prompt.place([Segment("who", 0, 4)])
    assert prompt.text[who.start : who.end] == "user"
    assert prompt.text.index("user") < who.start  # not the role tag that comes first
    encoded = tokenizer(prompt.text, add_special_tokens=False, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    (span,) = map_segments(prompt.text, encoded["offset_mapping"], [placed])
    assert tokens[span.token_start : span.token_end] == ["the", "capital", "is", "paris"]


def test_chat_template_that_rewrites_content_is_refused() -> None:
    tokenizer = make_tokenizer(WORDS)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | trim }}{% endfor %}"
    with pytest.raises(ValueError, match="rewrites"):
        render_chat(tokenizer, [{"role": "user", "content": " paris "}])
