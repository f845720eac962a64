"""A tiny SMTP server for the fault tests: it accepts every message, counts each by its Message-ID,
and can hold its answer to one message (the server has it, the sender does not know yet), which is
the moment a sender killed mid-send leaves behind. Plain SMTP over a socket, no TLS, no auth."""

from __future__ import annotations

import email
import socketserver
import threading
from collections import Counter
from typing import Any


class SmtpSink:
    def __init__(self, *, hold_at: int | None = None, hold_seconds: float = 15) -> None:
        self.received: list[str] = []  # Message-IDs in the order their data arrived
        self.lock = threading.Lock()
        self.hold_at = hold_at  # hold the answer to this message (1-based) ...
        self.hold_seconds = hold_seconds  # ... at most this long, or until release()
        self.held = threading.Event()
        self.released = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                try:
                    self.reply("220 sink ESMTP")
                    while line := self.rfile.readline():
                        verb = line.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
                        if verb == "EHLO":
                            self.reply("250-sink")
                            self.reply("250 8BITMIME")
                        elif verb == "DATA":
                            self.reply("354 end with <CRLF>.<CRLF>")
                            data = bytearray()
                            while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                                data += chunk[1:] if chunk.startswith(b"..") else chunk
                            if sink.accept(bytes(data)):
                                sink.held.set()
                                sink.released.wait(sink.hold_seconds)
                            self.reply("250 queued")
                        elif verb == "QUIT":
                            self.reply("221 bye")
                            return
                        else:  # HELO, MAIL, RCPT, RSET, NOOP
                            self.reply("250 ok")
                except OSError:  # the sender went away (killed)
                    return

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accept(self, data: bytes) -> bool:
        """Count the message; whether to hold the answer to it."""
        key = str(email.message_from_bytes(data)["Message-ID"]).strip().strip("<>")
        with self.lock:
            self.received.append(key)
            return self.hold_at is not None and len(self.received) == self.hold_at

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(self.received)

    def __len__(self) -> int:
        with self.lock:
            return len(self.received)

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
