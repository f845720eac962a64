"""Data queries on clinical records, the data-quality checks that raise them, the missing-data
report, and the pages and API of the database lock."""
