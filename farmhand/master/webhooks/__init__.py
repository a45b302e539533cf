"""Notifications: webhooks (signed JSON POSTs, retried for a day) and optional email."""
