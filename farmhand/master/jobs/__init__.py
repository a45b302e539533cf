"""The job farm on the master: jobs split into tasks, dispatched to workers, written behind."""
