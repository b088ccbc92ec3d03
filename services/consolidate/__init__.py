"""Consolidate service: projects submissions and builds the district report of a period.

It keeps its own projection of ``SubmissionReceived`` events, consolidates a period when
``PeriodClosed`` arrives (or when an officer asks over HTTP) and publishes
``ReportConsolidated`` through its outbox: v2 for every version (its per-unit detail in a file
beside the DOCX), v1 beside it while it fits in a Kafka record.
"""
