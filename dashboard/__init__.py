"""farmhand's web dashboard: a bottle app (dashboard.app.create_app) that talks to the master
only over its JSON-RPC port (dashboard.rpc), with live updates over Server-Sent Events."""
