"""Citations in a ReAct ``Final Answer``: bracketed source ids."""

from __future__ import annotations

import pytest

from lucidtrace.store._react import ReactStep, cited_ids, parse_react


def test_final_answer_carries_the_ids_it_cites_in_brackets() -> None:
    text = "Thought: done.\nFinal Answer: About 387,758 people [doc-3], per [2] and [doc-3]."
    assert parse_react(text)[-1] == ReactStep(
        "ANSWER", "About 387,758 people [doc-3], per [2] and [doc-3].", citations=("doc-3", "2")
    )


def test_action_final_answer_form_also_carries_citations() -> None:
    (step,) = parse_react("Action: Final Answer\nAction Input: Yes [src_1].")
    assert step.citations == ("src_1",)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("see [arxiv:2401.00001] and [wiki/Iceland#2]", ("arxiv:2401.00001", "wiki/Iceland#2")),
        ("a [link 1](http://x) and [sic] and [a, 1]", ()),  # links, words, lists: not ids
        ("[3](http://x) is a link, [3] is a citation", ("3",)),
        ("no brackets at all", ()),
    ],
)
def test_cited_ids_accepts_id_shaped_tokens_only(text: str, ids: tuple[str, ...]) -> None:
    assert cited_ids(text) == ids
