"""The `cloudwizard demo`: a simulated AWS account (moto behind app.fakes) scanned through the real API."""
