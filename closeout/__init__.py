"""Close-out: data queries and quality checks, the database lock, and dataset releases."""
