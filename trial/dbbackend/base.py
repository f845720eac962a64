"""Django's PostgreSQL backend, with a bounded health check of kept connections.

Connections are kept between requests (``DATABASE_CONN_MAX_AGE``, 60 s by default): a new
PostgreSQL backend per request reloads its catalogue caches on every first query, which measured
2-3x slower pages and submits. Django checks a kept connection before a request first uses it
(``CONN_HEALTH_CHECKS``) with ``SELECT 1``; against a server that is frozen (neither answering nor
refusing) that check would wait until gunicorn kills the worker, because no timeout applies to a
query on an open socket: the statement timeout is the frozen server's own to enforce. Here the
check is given the connect timeout: if the server has not answered by then, the connection's
socket is shut down, the check fails, and Django opens a new connection, whose connect timeout
then gives the request its 503 (tests/faults/test_database_down.py).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        raw: Any = self.connection
        if raw is None:
            return False
        seconds = float(self.settings_dict.get("OPTIONS", {}).get("connect_timeout") or 5)
        lock = threading.Lock()
        checking = True

        def sever() -> None:
            with lock:
                if not checking:
                    return
                try:
                    with socket.socket(fileno=os.dup(raw.pgconn.socket)) as sock:
                        sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(seconds, sever)
        timer.daemon = True
        timer.start()
        try:
            return bool(super().is_usable())
        finally:
            with lock:
                checking = False
            timer.cancel()
