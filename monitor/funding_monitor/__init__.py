"""funding-monitor: a live terminal monitor of binance-funding-ws, over SSH or on a local file."""
