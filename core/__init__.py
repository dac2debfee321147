"""Shared foundations: settings, errors, job records, storage, API keys and input schemas."""
