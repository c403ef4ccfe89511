"""A real local HTTP server over the recorded Sentinel-2 fixtures: the Earth Search v1 API and COGs with Range.

``/v1`` answers the recorded landing page, ``POST /v1/search`` the recorded first page, or the second
when the body carries the ``next`` token the first page's link gave; ``/cog/<file>`` serves the real COGs
with byte ranges. Recorded hrefs to Earth Search are rewritten to this server. Every request is logged
(method, path, range, bytes sent, body) for the tests to check.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    bytes_sent: int
    body: dict | None = None


@dataclass
class FixtureServer:
    stac_dir: Path
    cog_dir: Path
    log: list[Served] = field(default_factory=list)
    base: str = ""

    def rewrite(self, text: str) -> str:
        return text.replace(EARTH_SEARCH, f"{self.base}/v1")


def _handler(server: FixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _json(self, text: str, body: dict | None) -> None:
            data = server.rewrite(text).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            server.log.append(Served(self.command, self.path, None, len(data), body))

        def _file(self, head: bool) -> None:
            name = self.path.removeprefix("/cog/")
            path = server.cog_dir / name
            if "/" in name or ".." in name or not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            header = self.headers.get("Range")
            start, end, status = 0, len(data) - 1, 200
            if header:
                match = _RANGE.match(header)
                if not match:
                    self.send_error(416)
                    return
                start = int(match[1])
                end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
                status = 206
            chunk = data[start:end + 1]
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Content-Length", str(len(chunk)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if not head:
                self.wfile.write(chunk)
            server.log.append(Served(self.command, self.path, header, 0 if head else len(chunk)))

        def do_HEAD(self) -> None:
            self._file(head=True)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1":
                self._json((server.stac_dir / "earthsearch-v1__landing-page.json").read_text(), None)
            elif self.path.startswith("/cog/"):
                self._file(head=False)
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != "/v1/search":
                self.send_error(404)
                return
            page = "page2" if body.get("next") else "page1"
            self._json((server.stac_dir / f"earthsearch-v1__search-point-date__{page}.json").read_text(), body)

    return Handler


def serve(stac_dir: Path, cog_dir: Path) -> tuple[FixtureServer, ThreadingHTTPServer]:
    """Start the server on 127.0.0.1 at a free port, in a daemon thread; call ``.shutdown()`` to stop."""
    state = FixtureServer(stac_dir, cog_dir)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return state, httpd
