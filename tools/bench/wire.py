"""A small HTTP/1.1 keep-alive client on asyncio streams, for load generation on loopback.

httpx spends about a core on 200 requests/s with 32 connections, so with it the client, not
intake, set the measured rate. This client does only what the benchmark needs: POST/GET with
a body, one request at a time per connection, ``Content-Length`` or chunked answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit

TIMEOUT_S = 30.0


class HttpError(Exception):
    """No usable answer: the connection failed, closed, or timed out."""


class Connection:
    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self._host, self._port = host, port
        self._auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one request; a kept-alive connection the server closed while it was idle (its
        keep-alive timeout) is reopened once, as HTTP clients do: nothing reached the server."""
        reused = self._writer is not None
        try:
            return await self._exchange(method, path, body)
        except asyncio.IncompleteReadError as exc:
            if not reused or exc.partial:
                raise
            self.close()
            return await self._exchange(method, path, body)

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"{self._auth}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        return await read_response(self._reader)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response."""
    status_line = await reader.readuntil(b"\r\n")
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise HttpError(f"not an HTTP status line: {status_line!r}")
    length, chunked = 0, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return int(parts[1]), await reader.readexactly(length)
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return int(parts[1]), bytes(body)


class Pool:
    """Up to ``size`` keep-alive connections; a request waits for a free one."""

    def __init__(
        self, base_url: str, size: int, timeout_s: float = TIMEOUT_S, token: str | None = None
    ) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._timeout_s = timeout_s
        self._all = [Connection(self._host, self._port, token) for _ in range(size)]
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for connection in self._all:
            self._idle.put_nowait(connection)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request("GET", path, b"")

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """One request; raises :class:`HttpError` when there is no answer in time."""
        connection = await self._idle.get()
        try:
            return await asyncio.wait_for(connection.request(method, path, body), self._timeout_s)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError) as exc:  # fmt: skip
            connection.close()  # a half-read answer leaves the connection unusable
            raise HttpError(repr(exc)) from exc
        except BaseException:
            connection.close()
            raise
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self._all:
            with contextlib.suppress(Exception):
                connection.close()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
