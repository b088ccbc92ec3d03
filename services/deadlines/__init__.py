"""Deadlines: opens and closes periods, reminds units before the due date, flags them overdue."""
