"""The fault suite's own tools: services as killable processes, a private inbox, Kafka probes.

Every system runs in its own namespace (topics, consumer groups, databases) on the servers it
is given, mails a private Mailpit from its own sender address, and can run several instances
of a service (replicas) and restart any of them with other settings. Processes are started in
their own session and signalled by PID, never by name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contracts.plan import IndicatorType, Plan
from contracts.topics import (
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    DEADLINE_SUMMARY,
    PERIOD_CLOSED,
    SUBMISSION_RECEIVED,
    Topic,
)
from deploy.local import stack
from services.common.auth import Role
from services.common.reference import load_plan
from tests.support.auth import bearer
from tests.support.launch import Wiring, await_ready, free_port, launch, log_tail, stop
from tests.support.namespaces import forget_now
from tests.support.waiting import eventually

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SEED_PLAN = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SERVICES = ("submissions", "deadlines", "notify", "consolidate")
SIX_MONTHS_2027 = "kh-nq35-ngoc-hoi.2027.6-thang"
JUNE_2027 = "2027-06-01T09:00:00+07:00"
"""The six-month period of 2027 is open and not yet due (the seed ladder's 14-working-day reminder
of 25/5 goes out at start; the mail counts below leave reminders out)."""

SUBSCRIPTIONS: dict[str, dict[str, Topic]] = {
    "deadlines": {"submitted": SUBMISSION_RECEIVED},
    "notify": {
        "receipt": SUBMISSION_RECEIVED,
        "reminder": DEADLINE_APPROACHING,
        "overdue": DEADLINE_OVERDUE,
        "summary": DEADLINE_SUMMARY,
    },
    "consolidate": {"projection": SUBMISSION_RECEIVED, "period-closed": PERIOD_CLOSED},
}
"""Consumer groups of each service (``services/*/app.py``), to measure what is committed."""


@dataclass(frozen=True)
class Endpoints:
    """Where a system's servers answer; every address is on 127.0.0.1."""

    kafka_bootstrap: str
    mongo_uri: str
    smtp_port: int
    mailpit_api: str


# --- a private Mailpit ---------------------------------------------------------------------


class Mailpit:
    """A Mailpit of our own: the shared one keeps 500 messages and other suites read it."""

    def __init__(self, log_dir: Path) -> None:
        self.smtp_port = free_port()
        self.http_port = free_port()
        self.log_path = log_dir / "mailpit.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        binary = stack.Layout().bin_dir / f"mailpit-{stack.MAILPIT_VERSION}"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `make servers` (or stack provision)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(binary),
                    "--smtp",
                    f"127.0.0.1:{self.smtp_port}",
                    "--listen",
                    f"127.0.0.1:{self.http_port}",
                    "--max",
                    "100000",  # every message of the run is counted: none may be pruned
                    "--smtp-auth-accept-any",
                    "--smtp-auth-allow-insecure",
                    "--disable-version-check",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if stack.tcp_open(self.smtp_port) and stack.http_ok(f"{self.api}/readyz"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the private Mailpit did not start; see {self.log_path}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)


class Inbox:
    """Receipt mail by (receipt number, address), read from the private Mailpit's API."""

    RECEIPT_NO = re.compile(r"Số tiếp nhận:\s+(\S+)")

    def __init__(self, api: str) -> None:
        self._api = api
        self._receipt_of: dict[str, str | None] = {}  # Mailpit ID -> receipt no (immutable)

    async def messages(self, sender: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with httpx.AsyncClient(base_url=self._api, timeout=30) as client:
            start = 0
            while True:
                page = (
                    await client.get("/api/v1/messages", params={"start": start, "limit": 1000})
                ).json()
                found += page["messages"]
                start += len(page["messages"])
                if not page["messages"] or start >= page["messages_count"]:
                    break
        return [m for m in found if m["From"]["Address"] == sender]

    async def count(self, sender: str) -> int:
        """How many messages from ``sender`` have arrived: one request, to watch progress."""
        async with httpx.AsyncClient(base_url=self._api, timeout=30) as client:
            response = await client.get(
                "/api/v1/search", params={"query": f"from:{sender}", "limit": 1}
            )
        response.raise_for_status()
        return int(response.json()["messages_count"])

    async def receipts(self, sender: str) -> dict[tuple[str, str], list[str]]:
        """(receipt no, recipient) -> the Message-IDs of every copy that arrived."""
        messages = await self.messages(sender)
        unknown = [m["ID"] for m in messages if m["ID"] not in self._receipt_of]
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=self._api, timeout=30) as client:

            async def read(mid: str) -> None:
                async with limit:
                    text = (await client.get(f"/api/v1/message/{mid}")).json()["Text"]
                match = self.RECEIPT_NO.search(text)
                self._receipt_of[mid] = match.group(1) if match else None

            await asyncio.gather(*(read(mid) for mid in unknown))
        by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        for m in messages:
            receipt = self._receipt_of[m["ID"]]
            if receipt is None:
                continue  # a reminder or overdue notice, not a receipt
            for to in m["To"]:
                by_pair[(receipt, to["Address"])].append(m["MessageID"])
        return dict(by_pair)


@dataclass(frozen=True)
class MailCount:
    expected: int
    lost: int
    duplicated: int
    missing: list[tuple[str, str]]
    repeated: dict[tuple[str, str], int]
    resent: int
    """Copies repeating a Message-ID already seen (a resend of a message in flight)."""


def count_mail(
    expected: Iterable[tuple[str, str]],
    found: dict[tuple[str, str], list[str]],
    *,
    in_flight: int = 0,
    resendable: Collection[tuple[str, str]] = (),
) -> MailCount:
    """Lost: an expected (receipt, address) without mail. Duplicated: a second Message-ID for
    one (receipt, address) (a second notice), and resends of one Message-ID beyond
    ``in_flight``: the messages a killed notify may have had out, accepted by the mail server
    but not yet recorded. Those are sent again with the same Message-ID (issue 12: "a crash
    resends at most the in-flight entries, with the same Message-ID"); nothing else may be.
    Where the in-flight entries are known by name, ``resendable`` lists them: each may arrive
    twice, any other pair once (a resend of an entry not in it counts as duplicated)."""
    pairs = set(expected)
    allowed = set(resendable)
    missing = sorted(p for p in pairs if not found.get(p))
    repeated = {p: len(ids) for p, ids in found.items() if p in pairs and len(ids) > 1}
    second_ids = sum(len(set(found[p])) - 1 for p in repeated)
    resent = sum(len(found[p]) - len(set(found[p])) for p in repeated)
    excess = sum(
        max(len(found[p]) - len(set(found[p])) - (1 if p in allowed else 0), 0) for p in repeated
    )
    return MailCount(
        len(pairs),
        len(missing),
        second_ids + max(excess - in_flight, 0),
        missing,
        repeated,
        resent,
    )


def contacts_of(plan: Plan, unit_id: str) -> list[str]:
    unit = plan.unit(unit_id)
    assert unit is not None
    return [c.email for c in unit.contacts if c.email and "email" in c.receives]


# --- the system under test ------------------------------------------------------------------


@dataclass
class Instance:
    name: str
    service: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class FaultSystem:
    endpoints: Endpoints
    log_dir: Path
    clock_start: str = JUNE_2027
    plans: list[Path] = field(default_factory=lambda: [SEED_PLAN])
    namespace: str = field(default_factory=lambda: "f" + uuid.uuid4().hex[:11])
    instances: dict[str, Instance] = field(default_factory=dict)
    started_at: float | None = None
    """Wall time of the first start: every process shares one timeline from there."""

    def clock_now(self) -> dt.datetime:
        """The system's time now. A process (re)started later must start its clock here, not
        at ``clock_start``: a restarted clock runs behind the instants the dead process
        stored (leases, outbox intents) and would hold them for its predecessor's uptime."""
        elapsed = 0.0 if self.started_at is None else time.time() - self.started_at
        return dt.datetime.fromisoformat(self.clock_start) + dt.timedelta(seconds=elapsed)

    @property
    def sender(self) -> str:
        return f"{self.namespace}@baocao.example"

    @property
    def plan(self) -> Plan:
        return load_plan(self.plans[0])

    def topic(self, topic: Topic) -> str:
        return f"{self.namespace}.{topic.name}"

    def group(self, service: str, consumer: str) -> str:
        return f"{self.namespace}.baocao.{service}.{consumer}"

    def database(self, service: str) -> str:
        return f"{self.namespace}_baocao_{service}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.instances[name].port}"

    def env(self, instance: Instance) -> dict[str, str]:
        wiring = Wiring(
            kafka_bootstrap=self.endpoints.kafka_bootstrap,
            mongo_uri=self.endpoints.mongo_uri,
            smtp_host="127.0.0.1",
            smtp_port=self.endpoints.smtp_port,
            namespace=self.namespace,
            plans=self.plans,
            clock_start=self.clock_now().isoformat(),
        )
        defaults = {
            "BAOCAO_SCAN_INTERVAL_SECONDS": "1",
            "BAOCAO_SEND_RETRY_SECONDS": "0.5",
            # Longer than one attempt with the default 20 s SMTP timeout, shorter than the
            # default 120 s, so an entry a killed notify held is taken over sooner.
            "BAOCAO_NOTIFY_LEASE_SECONDS": "30",
            # Replicas on one host are told apart by name, not by the host name they share.
            "BAOCAO_INSTANCE": instance.name,
        }
        # An instance's own settings replace the defaults (and the clock) above.
        return wiring.env({instance.service: instance.port}, **{**defaults, **instance.env})

    def start_all(self) -> None:
        try:
            for service in SERVICES:
                self.launch(service)
            for service in SERVICES:
                self.wait_ready(service)
        except BaseException:
            # The fixture never yields, so its teardown will not run: the services already
            # started would outlive the test run (and keep dialling its servers).
            self.stop()
            raise

    def launch(self, name: str, *, service: str | None = None, env: dict[str, str] | None = None):
        """Start instance ``name`` (of ``service``, default the name); a known instance keeps
        its port, and ``env`` (if given) replaces its extra settings."""
        instance = self.instances.get(name) or Instance(name, service or name, free_port())
        assert not instance.alive(), f"{name} is running"
        if env is not None:
            instance.env = env
        self.instances[name] = instance
        if self.started_at is None:
            self.started_at = time.time()
        instance.process = launch(instance.service, self.env(instance), self.log_path(name))
        return instance

    def start(self, name: str, **kwargs: Any) -> None:
        self.launch(name, **kwargs)
        self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        instance = self.instances[name]
        assert instance.process is not None
        if not await_ready(self.url(name), instance.process, timeout):
            raise AssertionError(
                f"{name} did not become ready; its log ends:\n{self.log_tail(name)}"
            )

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, chars: int = 4000) -> str:
        return log_tail(self.log_path(name), chars)

    def signal(self, name: str, sig: signal.Signals, *, wait: float = 30.0) -> int | None:
        """Send ``sig`` to the instance's process group; its exit status once it is gone."""
        instance = self.instances[name]
        assert instance.process is not None
        if instance.alive():
            os.killpg(instance.process.pid, sig)
        try:
            return instance.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(instance.process.pid, signal.SIGKILL)
            return instance.process.wait(timeout=10)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)

    def stop(self) -> None:
        stop(i.process for i in self.instances.values() if i.process is not None)
        forget_now(
            self.namespace,
            kafka_bootstrap=self.endpoints.kafka_bootstrap,
            mongo_uri=self.endpoints.mongo_uri,
        )


# --- requests -------------------------------------------------------------------------------


def report_body(plan: Plan, period_id: str, unit_id: str, marker: str) -> dict[str, Any]:
    """A full report on every task of the unit; ``marker`` makes it findable in any store."""
    return {
        "period_id": period_id,
        "unit_id": unit_id,
        "submitted_by": {"name": "Nguyễn Thị Hà", "email": None},
        "tasks": [
            {
                "task_id": t.id,
                "status": "completed",
                "results": f"Đã triển khai nhiệm vụ {t.section} [{marker}].",
                "indicators": [answer(plan, i.code) for i in plan.indicators_for(t, unit_id)],
                "difficulties": "Địa bàn rộng.",
                "proposals": "",
            }
            for t in plan.tasks_of(unit_id)
        ],
    }


def answer(plan: Plan, code: str) -> dict[str, Any]:
    """A sample answer in the field the indicator's type reads."""
    indicator = plan.indicator(code)
    kind = indicator.type if indicator else IndicatorType.COUNT
    if kind is IndicatorType.BOOLEAN:
        return {"code": code, "flag": True}
    if kind is IndicatorType.TEXT:
        return {"code": code, "text": "Đã thực hiện."}
    return {"code": code, "value": 1}


@dataclass
class Filing:
    """One POST of a burst and what came back (``status`` None: no answer at all)."""

    unit_id: str
    marker: str
    status: int | None = None
    receipt: dict[str, Any] | None = None
    error: str | None = None


async def burst(
    system: FaultSystem,
    total: int,
    *,
    period_id: str = SIX_MONTHS_2027,
    workers: int = 8,
    units: list[str] | None = None,
    on_progress: dict[int, Any] | None = None,
    instance: str = "submissions",
    retry_refused: bool = True,
) -> list[Filing]:
    """``total`` reports over ``workers`` concurrent clients, each filing for its own units
    in turn (so a unit's revisions are never concurrent). ``on_progress[n]`` is awaited once
    ``n`` requests have been answered (to inject a fault mid-burst); while the service is down
    a client waits for it instead of counting a refused connection as a request."""
    plan = system.plan
    unit_ids = units or [u.id for u in plan.reporting_units()]
    filings: list[Filing] = []
    answered = 0
    hooks = dict(on_progress or {})
    fired: list[asyncio.Task[Any]] = []
    lock = asyncio.Lock()

    async def client(worker: int, count: int) -> None:
        nonlocal answered
        mine = unit_ids[worker::workers]
        async with httpx.AsyncClient(base_url=system.url(instance), timeout=60) as http:
            for i in range(count):
                unit_id = mine[i % len(mine)]
                filing = Filing(unit_id, f"m-{uuid.uuid4().hex[:16]}")
                filings.append(filing)
                body = report_body(plan, period_id, unit_id, filing.marker)
                while True:
                    try:
                        response = await http.post(
                            "/api/v1/submissions",
                            json=body,
                            headers=bearer(Role.OFFICER, unit_id),
                        )
                    except httpx.ConnectError:
                        if not retry_refused:
                            filing.error = "connect"
                            break
                        await asyncio.sleep(0.2)  # nothing was sent: the service is down
                        continue
                    except httpx.TransportError as error:
                        filing.error = f"{type(error).__name__}: {error}"
                        break
                    filing.status = response.status_code
                    if response.status_code == 201:
                        filing.receipt = response.json()
                    else:
                        filing.error = response.text[:500]
                    break
                async with lock:
                    answered += 1
                    hook = hooks.pop(answered, None)
                if hook is not None:
                    log.info("burst: %d answered, injecting the fault", answered)
                    fired.append(asyncio.create_task(hook()))

    per_worker = [total // workers + (1 if w < total % workers else 0) for w in range(workers)]
    started = time.monotonic()
    await asyncio.gather(*(client(w, n) for w, n in enumerate(per_worker)))
    await asyncio.gather(*fired)
    log.info("burst: %d requests in %.1f s", total, time.monotonic() - started)
    return filings


def expected_receipt_pairs(plan: Plan, filings: Iterable[Filing]) -> list[tuple[str, str]]:
    return [
        (f.receipt["receipt_no"], address)
        for f in filings
        if f.receipt is not None
        for address in contacts_of(plan, f.unit_id)
    ]


def consolidation_errors(
    report: dict[str, Any], revisions: Counter[str]
) -> tuple[int, int, list[str]]:
    """(lost, duplicated, details): each unit counted once, at its latest revision."""
    lost = duplicated = 0
    details = []
    units = {u["unit_id"]: u for u in report["units"]}
    for unit_id, expected in revisions.items():
        got = units[unit_id].get("revision") or 0
        if got != expected:
            details.append(f"{unit_id}: revision {got}, expected {expected}")
        lost += max(expected - got, 0)
        duplicated += max(got - expected, 0)
    extra = report["received"] - len(revisions)
    if extra:
        details.append(f"received {report['received']} for {len(revisions)} units")
    return lost + max(-extra, 0), duplicated + max(extra, 0), details


async def with_units(system: FaultSystem, payload: dict[str, Any]) -> dict[str, Any]:
    """A v2 report payload with ``units`` from the detail file it names (checked against its
    SHA-256): what :func:`consolidation_errors` reads, as the preview and v1 carry it."""
    async with httpx.AsyncClient(
        base_url=system.url("consolidate"), timeout=60, headers=bearer(Role.ADMIN)
    ) as http:
        got = await http.get(httpx.URL(payload["detail"]["url"]).path)
    got.raise_for_status()
    assert hashlib.sha256(got.content).hexdigest() == payload["detail"]["sha256"]
    return {**payload, "units": got.json()["units"]}


# --- Kafka ----------------------------------------------------------------------------------


async def lag(system: FaultSystem, service: str) -> int:
    """Records of the service's topics not yet committed by its consumer groups."""
    bootstrap = system.endpoints.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        behind = 0
        for consumer_name, topic in SUBSCRIPTIONS[service].items():
            name = system.topic(topic)
            [described] = await admin.describe_topics([name])
            partitions = [TopicPartition(name, p["partition"]) for p in described["partitions"]]
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(
                system.group(service, consumer_name), partitions=partitions
            )
            for tp in partitions:
                done = committed.get(tp)
                at = done.offset if done is not None and done.offset >= 0 else 0
                behind += max(ends[tp] - at, 0)
        return behind
    finally:
        await consumer.stop()
        await admin.close()


async def get_json(url: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(Role.ADMIN)) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def settled(system: FaultSystem, *names: str, timeout: float = 120.0) -> None:
    """Wait until every instance named has committed everything and has nothing in flight:
    then whatever it will ever do (a duplicate included) has been done."""

    async def quiet() -> bool:
        for name in names:
            service = system.instances[name].service
            try:
                if service in SUBSCRIPTIONS and await lag(system, service):
                    return False
            except KafkaError as error:  # the broker is restarting (another suite's test)
                log.info("lag unknown for now: %s", error)
                return False
            metrics = await scrape(system.url(name))
            if metrics.get("baocao_outbox_pending", 0.0) > 0:
                return False
            if metrics.get("baocao_amendments_pending", 0.0) > 0:
                return False
            if service == "notify":
                ledger = await get_json(system.url(name), "/api/v1/notifications?limit=1000")
                if any(e.get("status") == "pending" for e in ledger):
                    return False
        return True

    started = time.monotonic()
    await eventually(quiet, timeout=timeout, interval=0.5, what=f"{names} to settle")
    log.info("%s settled in %.1f s", names, time.monotonic() - started)


async def scrape(url: str) -> dict[str, float]:
    """An instance's metrics by name, summed over their labels."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[-1])
    return values


async def read_topic(bootstrap: str, topic: str, *, max_request: int = 1024 * 1024) -> list[Any]:
    """Every record on ``topic`` now (raw aiokafka records), up to the end offsets read first."""
    return await read_topics(bootstrap, [topic], max_request=max_request)


async def read_topics(
    bootstrap: str, topics: Iterable[str], *, max_request: int = 1024 * 1024
) -> list[Any]:
    """Every record on each of ``topics`` now, read by one consumer (one start for all)."""
    topics = list(topics)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=max_request,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topics} to their end"
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def producer(bootstrap: str, *, max_request_size: int = 1024 * 1024) -> AIOKafkaProducer:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_request_size=max_request_size,
    )
    await p.start()
    return p


def submission_events(records: Iterable[Any]) -> list[dict[str, Any]]:
    import json

    events = []
    for r in records:
        try:
            decoded = json.loads(r.value)
        except ValueError:
            continue
        if isinstance(decoded, dict) and isinstance(decoded.get("payload"), dict):
            events.append(decoded)
    return events


def duplicates(values: Iterable[str]) -> int:
    return sum(n - 1 for n in Counter(values).values() if n > 1)


class StallingSmtp:
    """A mail server that accepts connections and never says a word: a handler that sends
    through it hangs until its SMTP timeout."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StallingSmtp:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._writers.append(writer)
            await reader.read()  # until the client goes away

        self._server = await asyncio.start_server(accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
