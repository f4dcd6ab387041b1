"""The ops commands that run on the host next to the daemon (``status``, ``compare``,
``audit``, ``report``): thin
I/O shells around the pure judgement at the package root. Each takes a typed options object."""
