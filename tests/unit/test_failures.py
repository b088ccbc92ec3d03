"""Which failures pass by themselves (``is_transient``) and which Kafka will never accept."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RequestTimedOutError,
)
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from services.common.failures import (
    PermanentError,
    TransientError,
    is_transient,
    never_accepted_by_kafka,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(TransientError("SMTP away"), id="ours-transient"),
        pytest.param(ConnectionFailure("connection closed"), id="mongo-connection-failure"),
        pytest.param(AutoReconnect("connection reset"), id="mongo-auto-reconnect"),
        pytest.param(NotPrimaryError("not primary"), id="mongo-not-primary"),
        pytest.param(NetworkTimeout("timed out"), id="mongo-network-timeout"),
        pytest.param(ServerSelectionTimeoutError("no servers"), id="mongo-server-selection"),
        pytest.param(OperationFailure("interrupted", code=11602), id="mongo-interrupted-failover"),
        pytest.param(OperationFailure("shutting down", code=91), id="mongo-shutdown-in-progress"),
        pytest.param(OperationFailure("not primary", code=189), id="mongo-primary-stepped-down"),
        pytest.param(
            OperationFailure(
                "write failed", code=1, details={"errorLabels": ["RetryableWriteError"]}
            ),
            id="mongo-retryable-write-label",
        ),
        pytest.param(KafkaConnectionError("no broker"), id="kafka-connection"),
        pytest.param(RequestTimedOutError(), id="kafka-request-timed-out"),
        pytest.param(KafkaTimeoutError(), id="kafka-timeout"),
        pytest.param(ConnectionRefusedError(111, "refused"), id="connection-refused"),
        pytest.param(ConnectionResetError(104, "reset"), id="connection-reset"),
        pytest.param(TimeoutError(), id="timeout"),
    ],
)
def test_unavailable_infrastructure_is_transient(error: BaseException) -> None:
    assert is_transient(error) is True


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(PermanentError("plan not loaded"), id="ours-permanent"),
        pytest.param(OperationFailure("bad value", code=2), id="mongo-bad-value"),
        pytest.param(OperationFailure("no code"), id="mongo-no-code"),
        pytest.param(DuplicateKeyError("E11000 duplicate key", code=11000), id="mongo-duplicate"),
        pytest.param(MessageSizeTooLargeError(), id="kafka-message-too-large"),
        pytest.param(RecordTooLargeError(), id="kafka-record-too-large"),
        pytest.param(FileNotFoundError(2, "templates/receipt.txt"), id="file-not-found"),
        pytest.param(PermissionError(13, "denied"), id="permission"),
        pytest.param(ValueError("not a number"), id="value-error"),
        pytest.param(KeyError("plan_id"), id="key-error"),
    ],
)
def test_data_and_programming_errors_are_not_transient(error: BaseException) -> None:
    assert is_transient(error) is False


def test_kafka_refuses_for_good_only_what_it_can_never_accept() -> None:
    assert never_accepted_by_kafka(MessageSizeTooLargeError())
    assert never_accepted_by_kafka(RecordTooLargeError())
    assert not never_accepted_by_kafka(KafkaConnectionError("no broker"))
    assert not never_accepted_by_kafka(RequestTimedOutError())
    assert not never_accepted_by_kafka(ValueError("not a Kafka error"))
