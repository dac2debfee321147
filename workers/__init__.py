"""The Celery app and everything about running workers: bootstrap, model cache, reaper, embedded Redis."""
