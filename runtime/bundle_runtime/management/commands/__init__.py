"""``bundle_migrations`` and ``bundle_sessions`` (JSON on stdout, logs on stderr)."""
