"""Rendering results for people: failure tables and the run summary."""
