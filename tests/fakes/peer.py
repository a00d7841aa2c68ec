"""What every fake external service shares: an HTTP server on 127.0.0.1 for the test's duration."""

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePeer:
    """Subclasses set `handler` (a BaseHTTPRequestHandler that finds the peer as `self.server.peer`)."""

    handler: type[BaseHTTPRequestHandler]
    server: ThreadingHTTPServer | None = None

    @classmethod
    @contextmanager
    def running(cls):
        peer = cls()
        peer.server = ThreadingHTTPServer(("127.0.0.1", 0), cls.handler)
        peer.server.peer = peer
        thread = threading.Thread(target=peer.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield peer
        finally:
            peer.server.shutdown()
            peer.server.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"
