"""Scheduling service: finite-capacity production plans (flexible job shop, CP-SAT)."""
