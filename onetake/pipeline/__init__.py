"""Pure planning and the few side effects that belong to the client: probe, ledger, watch."""
