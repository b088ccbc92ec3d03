"""Submissions: units file their reports per task; each accepted report is announced as an event."""
