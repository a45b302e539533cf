"""The master's services: connections, client registry, API methods, console, reaper."""
