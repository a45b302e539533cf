"""Sans-IO protocol code: bytes in, events out, bytes back. No sockets, no clock, no database."""
