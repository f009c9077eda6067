"""A webhook receiver on loopback for tests: records the JSON bodies POSTed to it."""

from __future__ import annotations

import http.server
import json
import threading


class WebhookReceiver(http.server.ThreadingHTTPServer):
    """Answers 500 to the first `fail` POSTs and 200 after; with `hang`, holds every request until it is set."""

    def __init__(self, fail: int = 0, hang: threading.Event | None = None) -> None:
        self.fail, self.hang = fail, hang
        self.bodies: list[dict] = []
        self.attempts = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer._lock:
                    outer.attempts += 1
                    ok = outer.attempts > outer.fail
                if outer.hang is not None:
                    outer.hang.wait(30)
                if ok:
                    with outer._lock:
                        outer.bodies.append(json.loads(body))
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def events(self) -> list[dict]:
        with self._lock:
            return [e for body in self.bodies for e in body["events"]]

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        self.shutdown()
        self.server_close()
