"""The database lock: what stands in its way, the signed lock and unlock."""
