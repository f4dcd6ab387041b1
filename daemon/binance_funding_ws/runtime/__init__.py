"""The daemon's I/O shell: the WebSocket feed, the state-file writer, systemd notification,
logging, and the service that wires them around the pure core at the package root."""
