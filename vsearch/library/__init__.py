"""The library: what a user opens and asks (one index folder, or several shards as one)."""
