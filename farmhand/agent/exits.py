"""The exit codes with which an agent answers the master's stop and restart orders
(`clients.stop`, `clients.restart`). The node (farmhand/node/states.py) reads them: 75 starts
the agent again at once, whatever its restart policy; 76 leaves it stopped. Any other exit
follows the restart policy. Exit 0 is a stop by a signal (SIGTERM, SIGINT)."""

from __future__ import annotations

# EX_TEMPFAIL in sysexits.h: "try again" — the node (or systemd's RestartForceExitStatus=75)
# starts the agent again.
EXIT_RESTART = 75
# The master said stop: a node leaves the agent stopped (systemd: RestartPreventExitStatus=76).
EXIT_STOP = 76

EXIT_CODES = {"stop": EXIT_STOP, "restart": EXIT_RESTART}
