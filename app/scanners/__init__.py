"""Async collectors: AWS API responses -> typed inventory. No evaluation happens here."""
