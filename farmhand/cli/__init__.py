"""The `farmhand` command: the operator's and scripts' CLI over the stdlib client
(farmhand/client.py). One small module per command, registered in farmhand/cli/main.py."""
