"""A minimal HTTP/1.1 server on 127.0.0.1 that records requests and plays a scripted answer
(subclasses decide the answer themselves by overriding `respond`)."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    query: dict[str, str]
    form: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"

    def encode(self) -> bytes:
        head = (
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}\r\n"
            f"Content-Type: {self.content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode("ascii") + self.body


def json_answer(payload: object, status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload).encode(), "application/json")


@dataclass(frozen=True)
class Dribble:
    """The answer, a few bytes at a time, `pause` seconds apart: every read is quick, the
    whole takes long."""

    answer: Answer
    pause: float
    chunk: int = 8


# "drop": close the connection without answering; "hang": never answer.
Behaviour = Answer | Dribble | Literal["drop", "hang"]


class FakeServer:
    def __init__(self) -> None:
        self.answer: Behaviour = Answer()
        self.script: list[Behaviour] = []  # answers for the next requests, then `answer`
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()  # releases hanging handlers
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            self.requests.append(request)
            answer = await self.respond(request)
            if answer == "hang":
                await self._closing.wait()
            elif isinstance(answer, Answer):
                writer.write(answer.encode())
                await writer.drain()
            elif isinstance(answer, Dribble):
                encoded = answer.answer.encode()
                for start in range(0, len(encoded), answer.chunk):
                    writer.write(encoded[start : start + answer.chunk])
                    await writer.drain()
                    await asyncio.sleep(answer.pause)
        except ConnectionError:
            pass  # the client gave up first
        finally:
            writer.close()

    async def respond(self, request: Request) -> Behaviour:
        return self.script.pop(0) if self.script else self.answer


async def _read_request(reader: asyncio.StreamReader) -> Request:
    method, target, _version = (await reader.readline()).decode("ascii").split()
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    url = urlsplit(target)
    return Request(
        method=method,
        path=url.path,
        headers=headers,
        query=dict(parse_qsl(url.query)),
        form=dict(parse_qsl(body.decode(errors="replace"))),
        body=body,
    )


def unused_url() -> str:
    """An address where nothing listens: the port was free a moment ago and is closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
