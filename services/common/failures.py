"""Which failures pass by themselves and which never will.

A deliberate classification, not "every OSError is transient": retrying a missing template
file forever blocks a partition, and dead-lettering a MongoDB fail-over after three seconds
loses a report. Unavailable infrastructure (connection, timeout, fail-over, network) is
transient; data and programming errors are permanent after bounded attempts.
"""

from __future__ import annotations

import asyncio

from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)
from pymongo.errors import ConnectionFailure, OperationFailure, WaitQueueTimeoutError

# Server error codes that mean "the server is busy, stepping down or unreachable".
_TRANSIENT_MONGO_CODES = frozenset(
    {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 112}
)

_NEVER_ACCEPTED = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    UnsupportedVersionError,
)


class TransientError(Exception):
    """A dependency is unavailable; the same work will succeed later."""


class PermanentError(Exception):
    """The work can never succeed as it is; set it aside at once."""


def is_transient(error: BaseException) -> bool:
    """True when waiting and trying again can succeed without anyone changing anything."""
    if isinstance(error, TransientError | ConnectionFailure | WaitQueueTimeoutError):
        return True
    if isinstance(error, OperationFailure):
        # FerretDB answers a request cut short by its own shutdown with code 1 (InternalError)
        # "context canceled": the server going away, not the request being wrong.
        shutting_down = error.code == 1 and "context canceled" in str(error)
        return (
            error.code in _TRANSIENT_MONGO_CODES
            or shutting_down
            or error.has_error_label("RetryableWriteError")
        )
    if isinstance(error, KafkaError):
        return not isinstance(error, _NEVER_ACCEPTED)
    # Network-level failures only: a FileNotFoundError or PermissionError is an OSError too,
    # and no amount of waiting fixes it.
    return isinstance(error, ConnectionError | TimeoutError | asyncio.TimeoutError)


def never_accepted_by_kafka(error: BaseException) -> bool:
    """The broker (or the client before it) refuses this record whatever we do."""
    return isinstance(error, _NEVER_ACCEPTED)
