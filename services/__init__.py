"""Millrace services. A service never imports another service."""
