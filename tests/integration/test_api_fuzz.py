"""API fuzz (issue 9): each service's OpenAPI document is what the service answers.

Each of the four services is built in-process with its real settings under a fresh namespace,
on the real FerretDB and Kafka, and started (its lifespan runs). Schemathesis reads the
service's OpenAPI document and generates requests for every operation as an admin; each answer
must not be a 5xx, must have a status the document declares for that operation, and must match
the declared content type and schema. The same is done signed out, where every operation that
declares sign-in must answer 401, and, on submissions and deadlines, as the officer of a unit
with the unit's own id wherever a path or body names a unit and an open period of the seed plan
(the clock set inside it): the filing routes then answer their own successes and refusals
(201, 409, 413, 422...) instead of the 403 an admin gets.

Examples are few per operation and derandomized, so a run is repeatable and the whole file stays
within a few minutes on a small machine. ``BAOCAO_FUZZ_EXAMPLES`` raises the count for a longer
hunt; ``BAOCAO_FUZZ_ONLY`` keeps the operations whose label ("GET /api/v1/...") contains it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from pymongo import MongoClient
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.common.auth import Role
from services.common.clock import Clock, FixedClock
from services.common.settings import ServiceSettings
from services.consolidate.app import build_app as build_consolidate
from services.consolidate.config import ConsolidateSettings
from services.deadlines.app import build_app as build_deadlines
from services.deadlines.config import DeadlinesSettings
from services.notify.app import build_app as build_notify
from services.notify.config import NotifySettings
from services.submissions.app import build_app as build_submissions
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.support import schemathesis_compat
from tests.support.auth import bearer
from tests.support.submissions import SEED_OPEN_AT, SEED_PERIOD

with warnings.catch_warnings():  # it names an anyio alias deprecated since; harmless here
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette_testclient import TestClient

pytestmark = [
    pytest.mark.integration,
    # Schemathesis's own strategies draw from `random`; derandomized runs repeat all the same.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
schemathesis_compat.install()

EXAMPLES = int(os.environ.get("BAOCAO_FUZZ_EXAMPLES", "10"))
"""Requests generated per operation."""
BASE_URL = "http://testserver"


@dataclass(frozen=True)
class Service:
    name: str
    build: Callable[[Servers, str, Clock | None], tuple[FastAPI, ServiceSettings]]


def _submissions(
    servers: Servers, namespace: str, clock: Clock | None
) -> tuple[FastAPI, ServiceSettings]:
    s = SubmissionsSettings(  # type: ignore[call-arg]
        namespace=namespace, kafka_bootstrap=servers.kafka_bootstrap, mongo_uri=servers.mongo_uri
    )
    return build_submissions(s, clock=clock), s


def _deadlines(
    servers: Servers, namespace: str, clock: Clock | None
) -> tuple[FastAPI, ServiceSettings]:
    s = DeadlinesSettings(  # type: ignore[call-arg]
        namespace=namespace, kafka_bootstrap=servers.kafka_bootstrap, mongo_uri=servers.mongo_uri
    )
    return build_deadlines(s, clock=clock), s


def _notify(servers: Servers, namespace: str, _: Clock | None) -> tuple[FastAPI, ServiceSettings]:
    s = NotifySettings(  # type: ignore[call-arg]
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        smtp_host=servers.smtp_host,
        smtp_port=servers.smtp_port,
    )
    return build_notify(s), s


def _consolidate(
    servers: Servers, namespace: str, _: Clock | None
) -> tuple[FastAPI, ServiceSettings]:
    s = ConsolidateSettings(  # type: ignore[call-arg]
        namespace=namespace, kafka_bootstrap=servers.kafka_bootstrap, mongo_uri=servers.mongo_uri
    )
    return build_consolidate(s), s


SERVICES = {
    s.name: s
    for s in (
        Service("submissions", _submissions),
        Service("deadlines", _deadlines),
        Service("notify", _notify),
        Service("consolidate", _consolidate),
    )
}


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]
    unit_id: str | None = None
    """An officer's unit: put wherever a request names a unit (and the open period beside)."""

    def aim(self, case: Case) -> None:
        """Point the generated request at the caller's own unit in the open period."""
        if self.unit_id is None:
            return
        path = case.path_parameters if isinstance(case.path_parameters, dict) else {}
        body = case.body if isinstance(case.body, dict) else {}
        for where in (path, body):
            if "unit_id" in where:
                where["unit_id"] = self.unit_id
            if "period_id" in where:
                where["period_id"] = SEED_PERIOD


OFFICER_UNIT = "xa-bo-y"
CALLERS = {
    "admin": Caller("admin", bearer(Role.ADMIN)),
    "signed-out": Caller("signed-out", {}),
    "officer": Caller("officer", bearer(Role.OFFICER, OFFICER_UNIT), OFFICER_UNIT),
}
RUNS = [
    (service, caller)
    for service in sorted(SERVICES)
    for caller in sorted(CALLERS)
    # Notify and consolidate serve no unit's officer: every answer would be the 403 the
    # policy matrix already checks, at a minute's fuzzing each.
    if caller != "officer" or service in {"submissions", "deadlines"}
]


def signed_out_is_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """An operation that declares sign-in answers 401 to a caller who has not signed in."""
    if case.operation.definition.raw.get("security") and response.status_code != 401:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} to a caller who has not "
            "signed in (expected 401)"
        )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def fuzz(client: TestClient, operation: Any, caller: Caller) -> str | None:
    """Run the checks on generated requests for one operation; what failed, or None."""
    checks = [*CHECKS, signed_out_is_refused] if not caller.headers else CHECKS

    # Valid requests only: with schemathesis 4.10 and hypothesis 6.170, invalid ones (negative
    # mode) are rejected before they are sent wherever the path has a parameter, so it tried
    # hundreds of times per operation for nothing. Refusals are in tests/unit/test_errors.py.
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        caller.aim(case)
        response = case.call(base_url=BASE_URL, session=client, headers=caller.headers)
        case.validate_response(response, checks=checks, headers=caller.headers)

    try:
        run()
    except (Exception, BaseExceptionGroup) as error:  # checks failed, or the app raised: go on
        return f"--- {operation.label} ({caller.name}) ---\n{error}"
    return None


@pytest.mark.parametrize(("service", "caller"), RUNS)
def test_every_answer_is_declared(
    servers: Servers, namespace: str, service: str, caller: str
) -> None:
    # The officer files into the seed plan's period, open at this instant; the others keep
    # the wall clock, as the services run.
    clock = FixedClock(SEED_OPEN_AT) if CALLERS[caller].unit_id else None
    app, service_settings = SERVICES[service].build(servers, namespace, clock)
    schema = schemathesis.openapi.from_dict(
        app.openapi(),
        config=schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}}),
    )
    only = os.environ.get("BAOCAO_FUZZ_ONLY", "")
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [operation for operation in operations if only in operation.label]
    assert operations, f"{service} documents no operation"
    failures: list[str] = []
    try:
        # One client for the whole run: the lifespan (MongoDB, Kafka, the relay) starts once.
        with TestClient(app, base_url=BASE_URL) as client:
            for operation in operations:
                failure = fuzz(client, operation, CALLERS[caller])
                if failure:
                    failures.append(failure)
    finally:
        mongo: MongoClient[dict[str, Any]] = MongoClient(servers.mongo_uri)
        try:
            mongo.drop_database(service_settings.database_name(service))
        finally:
            mongo.close()
    assert not failures, f"{len(failures)} operation(s) of {service} failed:\n\n" + "\n\n".join(
        failures
    )
