"""A webhook receiver on 127.0.0.1 that checks each delivery's HMAC-SHA256 signature: what a bureau
system does on its side, run by ``riskengine quickstart`` to show warnings arriving."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from riskengine.workflows.warnings import SIGNATURE_HEADER, verify_signature


class LocalReceiver:
    """Receives warning deliveries for ``secret`` (set after subscribing); answers 401 to a bad
    signature, 204 otherwise. ``received`` holds the verified warnings, ``rejected`` the count of others."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if verify_signature(outer.secret, self.headers.get(SIGNATURE_HEADER, ""), body):
                    outer.received.append(json.loads(body)["warning"])
                    self.send_response(204)
                else:
                    outer.rejected += 1
                    self.send_response(401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/riskengine-warnings"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
