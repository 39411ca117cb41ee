"""Fakes for tests and the demo (an AWS front for moto); never imported by the production service."""
