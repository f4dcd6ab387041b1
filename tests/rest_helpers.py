"""Hostile REST servers for the tests, on loopback: one that drips its answers, one that sends
odd headers. The dripping one runs in a subprocess, so that its sockets and threads are not
counted in the test's own process."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# One thread, one selector: a request for a symbol starting with "D" gets a status line and
# then one byte of an endless header every DRIP_EVERY seconds; any other symbol gets a valid
# premiumIndex answer dated now, at once. A connection the client closes is closed here too.
_DRIP_SERVER = r"""
import selectors, socket, sys, time
DRIP_EVERY = float(sys.argv[1])
sel = selectors.DefaultSelector()
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(512)
listener.setblocking(False)
sel.register(listener, selectors.EVENT_READ)
print(listener.getsockname()[1], flush=True)
buffers, dripping = {}, {}

def close(conn):
    buffers.pop(conn, None)
    dripping.pop(conn, None)
    try:
        sel.unregister(conn)
    except (KeyError, ValueError):
        pass
    conn.close()

def answer(conn, request):
    line = request.split(b"\r\n", 1)[0].decode("latin-1")
    symbol = line.split("symbol=", 1)[-1].split(" ", 1)[0]
    if symbol.startswith("D"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        dripping[conn] = time.monotonic()
        return
    body = ('{"symbol":"%s","markPrice":"1.0","indexPrice":"1.0","lastFundingRate":"0.0001",'
            '"nextFundingTime":0,"time":%d}' % (symbol, int(time.time() * 1000))).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % len(body) + body)
    close(conn)

while True:
    for key, _ in sel.select(0.05):
        if key.fileobj is listener:
            conn, _ = listener.accept()
            conn.setblocking(False)
            buffers[conn] = b""
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            close(conn)
        elif conn in buffers and conn not in dripping:
            buffers[conn] += data
            if b"\r\n\r\n" in buffers[conn]:
                answer(conn, buffers[conn])
    now = time.monotonic()
    for conn, last in list(dripping.items()):
        if now - last >= DRIP_EVERY:
            try:
                conn.send(b"a")
                dripping[conn] = now
            except OSError:
                close(conn)
"""


@contextmanager
def drip_server(drip_every: float = 0.2) -> Iterator[str]:
    """The base URL of a server that drips answers for symbols starting with ``D``."""
    process = subprocess.Popen(
        [sys.executable, "-c", _DRIP_SERVER, str(drip_every)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


Responder = Callable[[str], tuple[int, dict[str, str], bytes]]


@contextmanager
def rest_server(respond: Responder) -> Iterator[tuple[str, list[str]]]:
    """A REST server answering each GET path with ``respond(path)``: (status, headers, body).
    Yields its base URL and the paths asked for."""
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            status, headers, body = respond(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


PREMIUM_BODY = (
    b'{"symbol":"BTCUSDT","markPrice":"11793.63104562","indexPrice":"11781.80495970",'
    b'"estimatedSettlePrice":"11781.16138815","lastFundingRate":"0.00038246",'
    b'"interestRate":"0.00010000","nextFundingTime":1597392000000,"time":1597370495002}'
)


HUGE = "9" * 5_000
ONE_ROW = (
    b'{"symbol":"BTCUSDT","markPrice":"11793.63104562","indexPrice":"11781.80495970",'
    b'"lastFundingRate":"0.00038246","nextFundingTime":1597392000000,"time":1597370495002}'
)
