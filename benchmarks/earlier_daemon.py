"""The earlier-daemon baseline of ``bench_daemon.py``: the earlier daemon's way, as a client.

What the earlier daemon did with every frame: ``websocket-client``'s ``WebSocketApp`` calls
``on_message``, which ``json.loads`` the frame, stores each raw row in the ``funding`` or
``tickers`` dict (by symbol, under a ``threading.Lock``) and then writes the whole state,
``json.dump(state, f, indent=2)`` to ``<state>.tmp`` and ``Path.replace`` — the write-up's
own code. Nothing here is tuned: the library's defaults, the earlier daemon's encoder, a write per
message.

The only addition is for the benchmark: after each message's write, the count of messages
handled goes into a shared 8-byte mmap (as the floor's does), so the benchmark can wait for
this client to have handled every frame sent. A ``pack_into`` costs ~0.1 us per frame.

    python benchmarks/earlier_daemon.py URL COUNTER_FILE STATE_FILE

Not a module to import: ``bench_daemon.py`` runs it as a subprocess and measures its CPU.
"""

import json
import mmap
import struct
import sys
import threading
import time
from pathlib import Path

import websocket

STATE_FILE = Path(sys.argv[3])
COUNTER = struct.Struct("<Q")

lock = threading.Lock()
funding: dict = {}
tickers: dict = {}
frames = 0

with open(sys.argv[2], "r+b") as counter_file:
    counter = mmap.mmap(counter_file.fileno(), COUNTER.size)


def write_state():
    with lock:
        state = {"funding": funding, "tickers": tickers, "updated_at": time.time()}
        tmp_file = STATE_FILE.with_suffix(".tmp")
        with open(tmp_file, "w") as f:
            json.dump(state, f, indent=2)
        tmp_file.replace(STATE_FILE)


def on_message(ws, message):
    global frames
    msg = json.loads(message)
    stream, data = msg.get("stream", ""), msg.get("data") or []
    with lock:
        if stream.startswith("!markPrice"):
            for row in data:
                funding[row["s"]] = row
        elif stream.startswith("!ticker"):
            for row in data:
                tickers[row["s"]] = row
    write_state()
    frames += 1
    COUNTER.pack_into(counter, 0, frames)


def on_error(ws, error):
    print(f"earlier-daemon baseline: {error!r}", file=sys.stderr, flush=True)


def on_close(ws, code, reason):
    print(f"earlier-daemon baseline: closed {code} {reason!r}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    app = websocket.WebSocketApp(
        sys.argv[1], on_message=on_message, on_error=on_error, on_close=on_close
    )
    app.run_forever()
    sys.exit(1)  # the benchmark never closes it: returning at all means the connection broke
