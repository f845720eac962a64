"""Adverse events: reports, review, serious-event alerts and deadlines."""
