"""Notify: e-mails (and later SMS) to units' contacts, once per cause, retried, recorded in a ledger."""
