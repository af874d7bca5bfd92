"""Kafka plumbing shared by the services: atomic appends and dead letters."""
