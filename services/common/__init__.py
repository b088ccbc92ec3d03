"""Plumbing shared by the services: settings, clock, Kafka, MongoDB, outbox, HTTP probes.

Shared code, not shared data: each service still owns its database and sees the others
only through events.
"""
