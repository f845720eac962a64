"""Dataset releases: numbered, immutable, deterministic zips of a locked database."""
