"""A small SMTP server for tests that a real mail server cannot be made to fail on cue.

It keeps what it accepts (``messages``) and counts ``connections``. ``per_session`` makes it
answer ``452`` to MAIL after that many messages on one connection (as providers limit
messages per session); ``drop_every`` makes it close the connection without a word instead
of answering every n-th MAIL command it sees (counted over all sessions).
"""

from __future__ import annotations

import asyncio
import contextlib


class ScriptedSmtpServer:
    def __init__(
        self,
        *,
        per_session: int | None = None,
        drop_every: int | None = None,
        closing_after: int | None = None,
    ) -> None:
        self.per_session = per_session
        self.drop_every = drop_every
        self.closing_after = closing_after
        """Answer ``421`` and close the connection after this many messages in a session (a
        server shedding load), where ``per_session`` answers 452 and keeps it open."""
        self.messages: list[bytes] = []
        self.connections = 0
        self.refused = 0
        self.dropped = 0
        self._mail_commands = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        sent = 0

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await say("220 scripted ESMTP")
            while line := await reader.readline():
                verb = line.decode("ascii", "replace").strip().split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    await say("250-scripted\r\n250-8BITMIME\r\n250 SIZE 10000000")
                elif verb == "MAIL":
                    self._mail_commands += 1
                    if self.drop_every and self._mail_commands % self.drop_every == 0:
                        self.dropped += 1
                        return  # the connection breaks: no answer at all
                    if self.closing_after is not None and sent >= self.closing_after:
                        self.refused += 1
                        await say("421 4.3.2 Service shutting down, closing transmission channel")
                        return
                    if self.per_session is not None and sent >= self.per_session:
                        self.refused += 1
                        await say("452 4.5.3 Too many messages in this session")
                    else:
                        await say("250 2.1.0 OK")
                elif verb == "RCPT":
                    await say("250 2.1.5 OK")
                elif verb == "DATA":
                    await say("354 End data with <CR><LF>.<CR><LF>")
                    body = bytearray()
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        body += chunk
                    self.messages.append(bytes(body))
                    sent += 1
                    await say("250 2.0.0 queued")
                elif verb == "QUIT":
                    await say("221 2.0.0 Bye")
                    return
                else:  # RSET, NOOP and anything else
                    await say("250 2.0.0 OK")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
