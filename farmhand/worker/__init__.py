"""The worker: slots, task processes (never a shell, their own process group, never outliving
the worker), and the reports it sends about them."""
