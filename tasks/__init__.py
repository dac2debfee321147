"""Celery tasks: thin glue that loads a job record, calls models/, and writes results through core."""
