"""A PostgreSQL wire proxy on 127.0.0.1 that counts round trips: every frontend Sync (the end
of an extended-protocol exchange: parse/bind/execute of one statement, or a pipelined batch)
and every simple Query is one wait for the server, whatever library sent it."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

_SYNC, _QUERY = b"S", b"Q"


@dataclass
class RoundTrips:
    count: int = 0
    kinds: list[str] = field(default_factory=list)
    counting: bool = False
    statements: dict[str, str] = field(default_factory=dict)

    def story(self) -> list[str]:
        """What the measured call sent, statement by statement (for a failing assertion)."""
        return [
            self.statements.get(k.removeprefix("bind "), k) if k.startswith("bind ") else k
            for k in self.kinds
        ]

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        self.count, self.kinds, self.counting = 0, [], True
        try:
            yield
        finally:
            self.counting = False


async def _pipe_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _frontend(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trips: RoundTrips
) -> None:
    """Client → server: the untyped startup messages, then typed messages, counted."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        while True:  # SSLRequest / GSSENCRequest / StartupMessage: length first, no type
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in (80877103, 80877104):  # not an SSL or GSS request: the startup
                break
        while True:
            kind = await reader.readexactly(1)
            raw_length = await reader.readexactly(4)
            (length,) = struct.unpack("!i", raw_length)
            body = await reader.readexactly(length - 4)
            if trips.counting and kind in (_SYNC, _QUERY):
                trips.count += 1
                trips.kinds.append(body[:60].decode(errors="replace") if kind == _QUERY else "S")
            if trips.counting and kind == b"B":  # Bind: which prepared statement runs
                trips.kinds.append("bind " + body.split(b"\x00")[1].decode(errors="replace"))
            if kind == b"P":  # Parse: remember each statement's text by its name
                name, _, rest = body.partition(b"\x00")
                trips.statements[name.decode(errors="replace")] = rest.split(b"\x00")[0][
                    :120
                ].decode(errors="replace")
            writer.write(kind + raw_length + body)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def counting_proxy(host: str, port: int) -> AsyncIterator[tuple[int, RoundTrips]]:
    """Listen on a free port of 127.0.0.1, forwarding to `host:port`; yields the port."""
    trips = RoundTrips()
    tasks: set[asyncio.Task[None]] = set()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, port)
        for job in (_frontend(client_r, server_w, trips), _pipe_server(server_r, client_w)):
            task = asyncio.create_task(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    bound = listener.sockets[0].getsockname()[1]
    try:
        yield bound, trips
    finally:
        listener.close()
        for task in list(tasks):
            task.cancel()
        await listener.wait_closed()
