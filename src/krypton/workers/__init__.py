"""Long-running loops: expiry and the event relay."""
