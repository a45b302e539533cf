"""What every agent shares: the link to the master (hello, heartbeat, orders) and reconnecting
with backoff."""
