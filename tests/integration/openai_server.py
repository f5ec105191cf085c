"""A scripted OpenAI-compatible HTTP server for tests: real clients, loopback only, no network.

The server (stdlib ``http.server`` in a thread, on 127.0.0.1 and a free port) answers
``POST /v1/chat/completions`` and ``POST /v1/responses`` with the next scripted reply. A
:class:`Reply` describes one model turn (text, tool calls, reasoning, usage, or an HTTP error)
and is rendered for the endpoint that was called and for the mode the client asked for: a JSON
body, or an SSE stream (``stream: true``) of chat-completion chunks or Responses API events.
:class:`Raw` sends a body or SSE events exactly as given.

How the reasoning is rendered: ``reasoning`` becomes ``reasoning_content`` on the chat message
(as vLLM, DeepSeek and other OpenAI-compatible servers send it) and a reasoning item with a
summary on the Responses API. For ``<think>`` in content, put it in ``content``.

Usage::

    server.script([Reply(tool_calls=[ToolCall("search", {"q": "x"})]), Reply(content="Done.")])
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)

An empty script answers 400 with a message saying so (a 4xx, so the client does not retry).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["OpenAIServer", "Raw", "RecordedRequest", "Reply", "ToolCall"]

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


@dataclass
class ToolCall:
    """A tool call the scripted model proposes."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_json(self) -> str:
        """The arguments as the JSON string the API carries."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Reply:
    """One scripted model turn, rendered for whichever endpoint and mode the client used.

    ``status`` >= 400 answers with an OpenAI-shaped error body (``error_message``,
    ``error_type``, ``error_code``) instead.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None
    model: str = "scripted-model"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str | None = None
    chunk_chars: int = 5
    status: int = 200
    error_message: str = "scripted error"
    error_type: str = "invalid_request_error"
    error_code: str | None = None

    def __post_init__(self) -> None:
        for call in self.tool_calls:
            if call.id is None:
                call.id = _next_id("call")


@dataclass
class Raw:
    """A reply sent exactly as given: a JSON ``body``, or SSE ``events`` (dicts sent as JSON).

    An event dict with a ``"type"`` key is sent with that SSE event name; ``"[DONE]"`` ends a
    chat stream.
    """

    status: int = 200
    body: Any = None
    events: list[dict[str, Any] | str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """What a client sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# ---------------------------------------------------------------- chat completions


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
    }


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def chat_completion(reply: Reply) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` body for ``reply``."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for call in reply.tool_calls
        ]
    return {
        "id": _next_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "system_fingerprint": "fp_scripted",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _finish_reason(reply),
                "logprobs": None,
            }
        ],
        "usage": _chat_usage(reply),
    }


def chat_chunks(reply: Reply, *, include_usage: bool) -> list[dict[str, Any] | str]:
    """The ``chat.completion.chunk`` SSE stream for ``reply`` (ending with ``[DONE]``)."""
    cid, created = _next_id("chatcmpl"), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": reply.model,
            "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    events: list[dict[str, Any] | str] = [chunk({"role": "assistant", "content": ""})]
    if reply.reasoning is not None:
        events += [
            chunk({"reasoning_content": p}) for p in _pieces(reply.reasoning, reply.chunk_chars)
        ]
    if reply.content is not None:
        events += [chunk({"content": p}) for p in _pieces(reply.content, reply.chunk_chars)]
    for index, call in enumerate(reply.tool_calls):
        args = call.arguments_json()
        head = {"index": index, "id": call.id, "type": "function"}
        events.append(chunk({"tool_calls": [{**head, "function": {"name": call.name}}]}))
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
            for p in _pieces(args, reply.chunk_chars)
        ]
    events.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _chat_usage(reply)
        events.append(usage_chunk)
    events.append("[DONE]")
    return events


# ---------------------------------------------------------------- responses


def _responses_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _response_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        items.append(
            {
                "type": "reasoning",
                "id": _next_id("rs"),
                "summary": [{"type": "summary_text", "text": reply.reasoning}],
            }
        )
    for call in reply.tool_calls:
        items.append(
            {
                "type": "function_call",
                "id": _next_id("fc"),
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments_json(),
                "status": "completed",
            }
        )
    if reply.content is not None:
        items.append(
            {
                "type": "message",
                "id": _next_id("msg"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.content, "annotations": []}],
            }
        )
    return items


def response_object(
    reply: Reply, *, items: list[dict[str, Any]] | None = None, status: str = "completed"
) -> dict[str, Any]:
    """The Responses API ``response`` object for ``reply``."""
    done = status == "completed"
    return {
        "id": _next_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": reply.model,
        "output": _response_items(reply) if items is None else items,
        "usage": _responses_usage(reply) if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": [],
    }


def response_events(reply: Reply) -> list[dict[str, Any] | str]:
    """The Responses API SSE events for ``reply``, from ``response.created`` to ``completed``."""
    final = response_object(reply)
    seq = itertools.count()
    events: list[dict[str, Any] | str] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": next(seq), **fields})

    started = {**final, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for index, item in enumerate(final["output"]):
        common = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            text = item["summary"][0]["text"]
            part = {"type": "summary_text", "text": ""}
            emit("response.reasoning_summary_part.added", **common, summary_index=0, part=part)
            for piece in _pieces(text, reply.chunk_chars):
                emit(
                    "response.reasoning_summary_text.delta", **common, summary_index=0, delta=piece
                )
            emit("response.reasoning_summary_text.done", **common, summary_index=0, text=text)
            done_part = {"type": "summary_text", "text": text}
            emit("response.reasoning_summary_part.done", **common, summary_index=0, part=done_part)
        elif item["type"] == "function_call":
            emit("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            for piece in _pieces(item["arguments"], reply.chunk_chars):
                emit("response.function_call_arguments.delta", **common, delta=piece)
            emit("response.function_call_arguments.done", **common, arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=index, item={**item, "content": []})
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            emit("response.content_part.added", **common, content_index=0, part=part)
            for piece in _pieces(text, reply.chunk_chars):
                emit(
                    "response.output_text.delta",
                    **common,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            emit("response.output_text.done", **common, content_index=0, text=text, logprobs=[])
            done_part = {"type": "output_text", "text": text, "annotations": []}
            emit("response.content_part.done", **common, content_index=0, part=done_part)
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=final)
    return events


# ---------------------------------------------------------------- the server


class OpenAIServer:
    """The scripted server; start with :meth:`start` (or as a context manager)."""

    def __init__(self) -> None:
        self._script: deque[Reply | Raw] = deque()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the client's ``base_url``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, responses: list[Reply | Raw]) -> None:
        """Queue the next replies, answered in order, one per request."""
        with self._lock:
            self._script.extend(responses)

    @property
    def pending(self) -> int:
        """How many scripted replies were not requested yet."""
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def _next(self) -> Reply | Raw | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def start(self) -> OpenAIServer:
        """Start serving on 127.0.0.1 and a free port, in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._lock:
                    server.requests.append(
                        RecordedRequest("POST", self.path, dict(self.headers.items()), body)
                    )
                server._answer(self, body)

            def do_GET(self) -> None:
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "none"}})

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="openai-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering

    def _answer(self, handler: Any, body: Any) -> None:
        path = handler.path.split("?")[0].rstrip("/")
        if path not in {"/v1/chat/completions", "/v1/responses"}:
            handler._json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        reply = self._next()
        if reply is None:
            message = f"scripted server: no response left for POST {path}"
            handler._json(400, {"error": {"message": message, "type": "script_exhausted"}})
            return
        if isinstance(reply, Raw):
            if reply.events is not None:
                self._sse(handler, reply.events, reply.status, reply.headers)
            else:
                handler._json(reply.status, reply.body)
            return
        if reply.status >= 400:
            error = {
                "message": reply.error_message,
                "type": reply.error_type,
                "param": None,
                "code": reply.error_code,
            }
            handler._json(reply.status, {"error": error})
            return
        stream = isinstance(body, dict) and bool(body.get("stream"))
        if path == "/v1/chat/completions":
            if stream:
                options = body.get("stream_options") or {}
                include_usage = bool(options.get("include_usage"))
                self._sse(handler, chat_chunks(reply, include_usage=include_usage))
            else:
                handler._json(200, chat_completion(reply))
        elif stream:
            self._sse(handler, response_events(reply))
        else:
            handler._json(200, response_object(reply))

    @staticmethod
    def _sse(
        handler: Any,
        events: list[dict[str, Any] | str],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.close_connection = True
        try:
            for event in events:
                if isinstance(event, str):
                    frame = f"data: {event}\n\n"
                else:
                    name = event.get("type")
                    prefix = f"event: {name}\n" if isinstance(name, str) else ""
                    frame = f"{prefix}data: {json.dumps(event)}\n\n"
                handler.wfile.write(frame.encode())
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream early
