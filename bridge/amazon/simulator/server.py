"""Serve any WSGI app on a real socket in a background thread (simulator, fake storefronts).

Tests use it to exercise the real HTTP path (connection reuse, dropped connections, timeouts)
that an in-process transport cannot show. Port 0 picks a free port; `base_url` tells which.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


@dataclass
class RunningServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting requests and close the listening socket; idempotent."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(wsgi_app: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start a threaded werkzeug server for `wsgi_app`; the caller must `stop()` it (or use `with`)."""
    server = make_server(host, port, wsgi_app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"wsgi-server-{server.server_port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server, thread)
