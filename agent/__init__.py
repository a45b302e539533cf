"""What every agent shares: connect, hello, heartbeat, reconnect with backoff, order handling."""
