"""Checks: pure functions over the collected inventory, with their metadata as data."""
