"""Django's PostgreSQL backend, with a health check of kept connections that cannot hang
(``base.DatabaseWrapper.is_usable``)."""
