"""Real servers for integration and end-to-end tests.

Where a Docker engine answers, the servers come from testcontainers; everywhere else (these
machines) from the project's own local stack (``deploy/local/stack.py``), started here if it is
not running and stopped at the end if this run started it. The choice is printed in the header.
Unit tests never ask for these fixtures, so ``pytest -m unit`` needs no server at all.
"""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import cache

import pluggy
import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from deploy.local import stack
from tests.support.auth import export_key_files
from tests.support.namespaces import forget_now

# Before any settings are read: every service built or started by a test trusts this key.
export_key_files()


@dataclass(frozen=True)
class Servers:
    provider: str
    kafka_bootstrap: str
    mongo_uri: str
    smtp_host: str
    smtp_port: int
    mailpit_api: str
    stop_kafka: Callable[[], None]
    start_kafka: Callable[[], None]


@cache
def docker_answers() -> bool:
    if os.environ.get("BAOCAO_TEST_SERVERS") == "local":
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:  # no engine, no socket, no permission: all mean "use the local stack"
        return False
    return True


def pytest_report_header(config: pytest.Config) -> str:
    if docker_answers():
        return "baocao servers: testcontainers (a Docker engine answered)"
    layout = stack.Layout()
    return (
        "baocao servers: local stack (no Docker engine) — Kafka 127.0.0.1:"
        f"{layout.kafka_port}, FerretDB 127.0.0.1:{layout.mongo_port} "
        f"on {layout.ferretdb_backend}, "
        f"Mailpit SMTP 127.0.0.1:{layout.smtp_port} API 127.0.0.1:{layout.mailpit_port}"
    )


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    if docker_answers():
        yield from _containers()
    else:
        yield from _local_stack()


def _local_stack() -> Iterator[Servers]:
    layout = stack.Layout()
    processes = stack.servers(layout)
    try:
        stack.provision(layout)
        started = stack.start_all(processes.values())
    except stack.StackError as error:
        pytest.fail(f"the local stack did not come up:\n{error}", pytrace=False)
    kafka = processes["kafka"]
    _watched.update(processes)

    def start_kafka() -> None:
        kafka.start()
        kafka.wait_healthy()

    try:
        yield Servers(
            provider="local stack",
            kafka_bootstrap=f"127.0.0.1:{layout.kafka_port}",
            mongo_uri=f"mongodb://127.0.0.1:{layout.mongo_port}/",
            smtp_host="127.0.0.1",
            smtp_port=layout.smtp_port,
            mailpit_api=f"http://127.0.0.1:{layout.mailpit_port}",
            stop_kafka=lambda: kafka.stop(),
            start_kafka=start_kafka,
        )
    finally:
        _watched.clear()
        stack.stop_all([processes[name] for name in started])


# --- a shared server that dies ends the run, with its post-mortem ----------------------------
# Once FerretDB or Kafka stops answering, every later test fails on a 30 s timeout and the run
# outlives CI's limit without saying why; the first failure after the death stops it instead.

_watched: dict[str, stack.Process] = {}
_failed_since_check = False


def _answers(process: stack.Process) -> bool:
    if not process.healthy():
        return False
    if process.name != "ferretdb":
        return True
    # FerretDB's readiness probe answers while its storage is stuck: ask for a document.
    layout = process.layout
    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{layout.mongo_port}/", serverSelectionTimeoutMS=3000, timeoutMS=5000
    )
    try:
        client["baocao_watch"]["probe"].find_one({"_id": "probe"})
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def _post_mortem(process: stack.Process) -> str:
    report = process.post_mortem()
    if process.name == "ferretdb" and process.running():
        # Where a hung FerretDB's goroutines wait (Go's pprof, on its debug port).
        url = f"http://127.0.0.1:{process.layout.ferretdb_debug_port}/debug/pprof/goroutine?debug=1"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                dump = response.read().decode(errors="replace").splitlines()[:200]
        except OSError as error:
            dump = [f"(no goroutine dump: {error})"]
        report += "\nFerretDB's goroutines:\n    " + "\n    ".join(dump)
    return report


def _silent_servers() -> list[stack.Process]:
    """The local stack's servers that stay silent for about six seconds (a busy server may
    miss one probe; a dead or hung one misses all)."""
    silent = [process for process in _watched.values() if not _answers(process)]
    for _ in range(3):
        if not silent:
            break
        time.sleep(2)
        silent = [process for process in silent if not _answers(process)]
    return silent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    if outcome.get_result().failed:
        global _failed_since_check
        _failed_since_check = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Checked before the next test, not at the failure: by then the failed test's teardown has
    # restarted anything it stopped on purpose (a Kafka outage test).
    global _failed_since_check
    if not _failed_since_check or not _watched:
        return
    _failed_since_check = False
    silent = _silent_servers()
    if silent:
        names = ", ".join(process.name for process in silent)
        report = "\n\n".join(_post_mortem(process) for process in silent)
        pytest.exit(f"shared server(s) stopped answering: {names}\n{report}", returncode=3)


def _containers() -> Iterator[Servers]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mailpit import MailpitContainer
    from testcontainers.community.mongodb import MongoDbContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.8.0").with_kraft()
    mongo = MongoDbContainer("mongo:7")
    mailpit = MailpitContainer("axllent/mailpit:v1.33")
    for container in (kafka, mongo, mailpit):
        container.start()
    wrapped = kafka.get_wrapped_container()
    try:
        yield Servers(
            provider="testcontainers",
            kafka_bootstrap=kafka.get_bootstrap_server(),
            mongo_uri=mongo.get_connection_url(),
            smtp_host=mailpit.get_container_host_ip(),
            smtp_port=mailpit.get_exposed_smtp_port(),
            mailpit_api=mailpit.get_base_api_url(),
            # Pausing keeps the mapped port, so clients see an outage, then the same broker.
            stop_kafka=wrapped.pause,
            start_kafka=wrapped.unpause,
        )
    finally:
        for container in (mailpit, mongo, kafka):
            container.stop()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """Fresh topics, consumer groups and databases for one test, deleted after it where the
    test ran against real servers (see ``tests/support/namespaces.py``)."""
    name = "t" + uuid.uuid4().hex[:12]
    yield name
    if "servers" in request.fixturenames:
        servers: Servers = request.getfixturevalue("servers")
        forget_now(name, kafka_bootstrap=servers.kafka_bootstrap, mongo_uri=servers.mongo_uri)
