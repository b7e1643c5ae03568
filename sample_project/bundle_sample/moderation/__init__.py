"""Moderation app: reports with a status and a severity."""
