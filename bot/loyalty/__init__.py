"""The loyalty domain: plain functions over a SQLAlchemy Session; no web, no LINE.

The caller (a webhook event, a job, a CLI command, an API request) owns the transaction.
"""
