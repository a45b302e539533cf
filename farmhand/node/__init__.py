"""node.py's supervisor: agents.toml, supervised child processes with supervisord-like states,
rotated logs, a local control socket, and reports to the master (see states.py for the table)."""
