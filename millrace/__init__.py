"""Millrace command-line entry point and local tooling."""
