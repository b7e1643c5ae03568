"""Test-only app (label ``migapp``) whose migrations carry safemigrate-style markings.

Installed only by the tests that need it (``modify_settings``); it has no
models module, so test flushes never touch its tables.
"""
