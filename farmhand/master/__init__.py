"""The master: one port for agents, scripts and the console; the registry of clients, the job
farm, the device hub, keys, the audit log and the storage behind them."""
