"""Captured inputs and outputs: every value becomes valid JSON, nothing is cut silently."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
from typing import Any

import pytest

import lucidtrace as lt
from lucidtrace.tracer import semconv
from lucidtrace.tracer._serialize import MAX_DEPTH, to_json
from tests.unit.tracer.conftest import Recorder


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: Any


def test_values_without_a_json_form() -> None:
    value = {
        "obj": Opaque(),
        "broken": BrokenRepr(),
        "when": datetime.date(2026, 1, 2),
        "color": Color.RED,
        "point": Point(1, {2, 3}),
        "raw": b"\x00\x01",
        "nan": math.nan,
        "inf": -math.inf,
        1: "int key",
    }
    out = json.loads(to_json(value))
    assert out["obj"] == "<Opaque thing>"
    assert out["broken"] == "<unrepresentable BrokenRepr>"
    assert out["when"] == "2026-01-02"
    assert out["color"] == "red"
    assert out["point"]["x"] == 1
    assert sorted(out["point"]["y"]) == [2, 3]
    assert out["raw"] == "<2 bytes>"
    assert out["nan"] == "nan"
    assert out["inf"] == "-inf"
    assert out["1"] == "int key"


def test_cycles_and_deep_nesting() -> None:
    cyclic: dict[str, Any] = {"name": "a"}
    cyclic["self"] = cyclic
    shared = [1]
    out = json.loads(to_json({"c": cyclic, "x": shared, "y": shared}))
    assert out == {"c": {"name": "a", "self": "[cycle]"}, "x": [1], "y": [1]}
    deep: list[Any] = []
    node = deep
    for _ in range(MAX_DEPTH + 10):
        node.append([])
        node = node[0]
    text = to_json(deep)
    assert "[max depth]" in text
    json.loads(text)


def test_huge_values_are_cut_visibly() -> None:
    out = json.loads(to_json({"big": "x" * 5_000, "after": "y" * 10}, max_chars=1_000))
    assert out["big"].startswith("x" * 1_000)
    assert out["big"].endswith("...[truncated 4000 chars]")
    assert out["after"] == "...[truncated 10 chars]"
    items = json.loads(to_json(list(range(20_000))))
    assert len(items) == 10_001
    assert items[-1] == "[10000 more items]"


def test_pydantic_like_models_use_model_dump() -> None:
    class Model:
        def model_dump(self, mode: str = "python") -> dict[str, Any]:
            return {"mode": mode, "v": 1}

    assert json.loads(to_json(Model())) == {"mode": "json", "v": 1}


def test_traced_captures_inputs_with_unserialisable_arguments(recorder: Recorder) -> None:
    class Client:
        def __repr__(self) -> str:
            return "Client()"

    loop: list[Any] = []
    loop.append(loop)

    @lt.traced
    def call(client: Client, payload: list[Any], limit: int = 3) -> Client:
        return client

    client = Client()
    assert call(client, loop) is client
    attrs = recorder.attrs("call")
    assert json.loads(str(attrs[semconv.INPUT])) == {"client": "Client()", "payload": ["[cycle]"]}
    assert json.loads(str(attrs[semconv.OUTPUT])) == "Client()"


def test_traced_with_a_wrong_call_still_raises_the_functions_error(recorder: Recorder) -> None:
    @lt.traced
    def f(a: int) -> int:
        return a

    with pytest.raises(TypeError, match="positional argument"):
        f(1, 2, 3)  # type: ignore[call-arg]
    assert json.loads(str(recorder.attrs("f")[semconv.INPUT])) == {"args": [1, 2, 3], "kwargs": {}}
