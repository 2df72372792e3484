"""The chain of stores: each device's SQLite mood log forwarded, exactly once, to a central PostgreSQL.

``outbox`` is the device side in SQLite (identity, what the server acknowledged), ``schema`` the
central ``fer_edge`` schema and its migrations, ``forward`` the batches and the background worker,
``central_report`` the reports across stores. psycopg is imported only where a server is used, so
a device without the ``fleet`` extra runs exactly as before.
"""
