"""The dashboard's routes, one module per concern: auth, pages, api, live (events, metrics)."""
