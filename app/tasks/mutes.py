"""Mute rule jobs (being built)."""

JOBS: list = []
