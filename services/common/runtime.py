"""What every service has: settings, clock, broker, database, outbox relay, probes, metrics.

A service's ``app.py`` creates a :class:`Runtime`, says what to wire once MongoDB is connected
(stores, subscriptions, background loops) and gets a FastAPI app whose lifespan starts and stops
it all. Nothing connects at import or construction time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from contracts.topics import ALL_TOPICS, Topic
from services.common.auth import (
    Role,
    TokenAuthenticator,
    TokenVerifier,
    load_public_key,
    require,
)
from services.common.clock import Clock, clock_from
from services.common.consumer import (
    OBSERVE_SECONDS,
    BatchHandler,
    Consumption,
    Handler,
    Outcome,
    RetryPolicy,
)
from services.common.errors import (
    ApiProblem,
    install_error_handlers,
    not_ready,
    problems,
    require_json_body,
)
from services.common.http import (
    DEFAULT_MAX_BODY_BYTES,
    BodySizeLimit,
    StreamedRoute,
    except_streamed,
)
from services.common.kafka import KafkaPublisher, Names, build_broker, ensure_topics
from services.common.metrics import CommonMetrics, instrument_http
from services.common.mongo import DeadLetters, Document, connect, ping
from services.common.openapi import document_answers
from services.common.outbox import Outbox, OutboxRelay
from services.common.reference import Catalog
from services.common.replicas import Replicas
from services.common.runner import LIFESPAN_STOP_SECONDS
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        *,
        clock: Clock | None = None,
        catalog: Catalog | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.clock = clock or clock_from(settings.clock_start)
        self.catalog = catalog or Catalog.load(settings.plan_paths)
        self.verifier = TokenVerifier(load_public_key(settings.auth_public_key_file))
        self.registry = CollectorRegistry()
        self.metrics = CommonMetrics(self.registry, service)
        self.names = Names(settings.namespace)
        self.broker: KafkaBroker = build_broker(
            settings.kafka_bootstrap, service=service, registry=self.registry
        )
        self.publisher = KafkaPublisher(self.broker, self.names, self.metrics)
        self._retry = retry or RetryPolicy()
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._outbox: Outbox | None = None
        self._relay: OutboxRelay | None = None
        self._replicas: Replicas | None = None
        self._consumption: Consumption | None = None
        self._subscriptions: dict[str, tuple[Topic, Handler]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loops: list[Callable[[], Coroutine[Any, Any, None]]] = []

    # --- used by a service's wiring, inside the lifespan ---------------------------------

    @property
    def db(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise RuntimeError("the database is available only while the app runs")
        return self._db

    @property
    def outbox(self) -> Outbox:
        """Where this service's handlers store the events they announce (see ``outbox.py``)."""
        if self._outbox is None:
            raise RuntimeError("the outbox is available only while the app runs")
        return self._outbox

    def subscribe(
        self,
        topic: Topic,
        consumer: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        together: BatchHandler | None = None,
    ) -> None:
        """``concurrency``: records of a batch handled at once (idempotent, order-free
        handlers only); ``together``: a whole batch in one call, ``handler`` taking over a
        batch it fails (see :meth:`Consumption.handle_batch`)."""
        if self._consumption is None:
            raise RuntimeError("subscribe() only from the wiring function")
        self._subscriptions[consumer] = (topic, handler)
        self._consumption.subscribe(
            self.broker, topic, consumer, handler, concurrency=concurrency, together=together
        )

    def wake_relay(self) -> None:
        """Publish stored events now instead of at the relay's next tick."""
        if self._relay is not None:
            self._relay.wake()

    def loop(self, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``body`` in the background while the app runs (cancelled at shutdown)."""
        self._loops.append(body)

    # --- the app --------------------------------------------------------------------------

    def app(
        self,
        wire: Callable[[Runtime], Awaitable[None]],
        *,
        title: str,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        streamed: Sequence[StreamedRoute] = (),
    ) -> FastAPI:
        """``streamed``: upload routes with their own body limit, read as they arrive."""

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self._start(wire)
            try:
                yield
            finally:
                await self._stop()

        app = FastAPI(title=title, lifespan=lifespan)
        install_error_handlers(app)
        document_answers(app)
        app.middleware("http")(except_streamed(streamed, require_json_body))
        # Added last, so outermost: an oversized body is refused before anything reads it.
        app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes, streamed=streamed)
        # Outside even that: the HTTP metrics count what the limit refuses too.
        instrument_http(app, self.registry)
        app.state.runtime = self
        # Services replace it in their wiring if they know more (submissions: sessions, API
        # tokens); every other endpoint check goes through ``services.common.auth``.
        app.state.authenticator = TokenAuthenticator(self.verifier, self.clock.now)
        app.add_api_route("/healthz", self._healthz, methods=["GET"], include_in_schema=False)
        app.add_api_route("/readyz", self._readyz, methods=["GET"], include_in_schema=False)
        app.add_api_route("/metrics", self._metrics, methods=["GET"], include_in_schema=False)
        for path, endpoint, method, summary in (
            ("/dead-letters", self._dead_letters, "GET", "Records this service set aside"),
            (
                "/dead-letters/{letter_id}/replay",
                self._replay_dead_letter,
                "POST",
                "Hand a dead letter to its handler again (after the cause was fixed)",
            ),
            (
                "/dead-letters/{letter_id}/discard",
                self._discard_dead_letter,
                "POST",
                "Close a dead letter that can never be handled (garbage); it is kept",
            ),
            ("/outbox/parked", self._parked, "GET", "Events Kafka refused, set aside"),
            (
                "/outbox/parked/{event_id}/replay",
                self._replay_parked,
                "POST",
                "Put a parked event back in line for Kafka",
            ),
        ):
            app.add_api_route(
                f"/api/v1{path}",
                endpoint,
                methods=[method],
                summary=summary,
                tags=["operations"],
                # Dead letters and parked events carry report contents: admins only.
                dependencies=[Depends(require(Role.ADMIN))],
                # The id in the path may name nothing.
                responses=problems(404) if "{" in path else None,
            )
        return app

    async def _start(self, wire: Callable[[Runtime], Awaitable[None]]) -> None:
        try:
            await self._open(wire)
        except BaseException:
            # Whatever was opened before the failure is closed: no half-started process.
            await self._stop()
            raise

    async def _open(self, wire: Callable[[Runtime], Awaitable[None]]) -> None:
        self._client = connect(self.settings.mongo_uri)
        self._db = self._client[self.settings.database_name(self.service)]
        dead_letters = DeadLetters(self._db)
        await dead_letters.create_indexes()
        self._consumption = Consumption(
            self.service, self.names, dead_letters, self.metrics, self.clock, self._retry
        )
        self._outbox = Outbox(self._db, self.clock, writer=self.settings.instance)
        self._replicas = Replicas(self._db, self.settings.instance, self.clock)
        self._relay = OutboxRelay(
            self._outbox,
            self.publisher.enqueue_raw,
            self.clock,
            self.metrics,
            replicas=self._replicas,
        )
        await self._ensure_topics()
        await wire(self)
        loops = [
            *self._loops,
            self._relay.run,
            self._replicas.run,
            self._consumption.observe,
            self._watch_ready,
        ]
        await self.broker.start()
        self._tasks = [
            asyncio.create_task(body(), name=f"{self.service}:{body.__qualname__}")
            for body in loops
        ]
        log.info(
            "%s started (namespace %r, plans %s)",
            self.service,
            self.settings.namespace,
            sorted(self.catalog.plans),
        )

    async def _ensure_topics(self, patience: float = 120.0) -> None:
        """Create our topics, waiting for Kafka if it is starting too instead of exiting."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + patience, 0.5
        while True:
            try:
                await ensure_topics(
                    self.settings.kafka_bootstrap,
                    [self.names.topic(t) for t in ALL_TOPICS],
                    self.settings.topic_partitions,
                )
                return
            except KafkaError as error:
                if loop.time() > deadline:
                    raise
                log.warning("waiting for Kafka at %s: %s", self.settings.kafka_bootstrap, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _stop(self) -> None:
        # uvicorn puts no limit on the lifespan's shutdown; the stop budget is in runner.py.
        try:
            async with asyncio.timeout(LIFESPAN_STOP_SECONDS):
                await self._close()
        except TimeoutError:
            log.error(
                "%s: stop took longer than %s s; exiting anyway",
                self.service,
                LIFESPAN_STOP_SECONDS,
            )

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.broker.stop()
            if self._replicas is not None:
                with contextlib.suppress(PyMongoError):
                    await self._replicas.leave()
        finally:
            if self._client is not None:
                await self._client.close()
                self._client = None

    async def ready(self) -> dict[str, bool]:
        checks = {
            "kafka": await _kafka_ping(self.broker, [self.names.topic(t) for t in ALL_TOPICS]),
            "mongodb": self._db is not None and await ping(self._db),
        }
        self.metrics.ready.set(1 if all(checks.values()) else 0)
        return checks

    async def _watch_ready(self) -> None:
        """``baocao_ready`` every few seconds rather than at each scrape: a scrape does no I/O,
        so a slow database cannot turn into a scrape timeout (a service that looks down)."""
        while True:
            await self.ready()
            await asyncio.sleep(OBSERVE_SECONDS)

    async def _dead_letters(self, limit: int = 100) -> list[Document]:
        if self._consumption is None:
            raise not_ready()
        return await self._consumption.dead_letters.list(min(max(limit, 1), 1000))

    async def _replay_dead_letter(self, letter_id: str) -> dict[str, object]:
        if self._consumption is None:
            raise not_ready()
        letter = await self._consumption.dead_letters.get(letter_id)
        if letter is None or letter["consumer"] not in self._subscriptions:
            raise ApiProblem(404, "dead_letter_not_found", "Không tìm thấy bản ghi lỗi này.")
        topic, handler = self._subscriptions[letter["consumer"]]
        record = StoredRecord(
            topic=letter["topic"],
            partition=letter["partition"],
            offset=letter["offset"],
            key=bytes(letter["key"]) if letter.get("key") is not None else None,
            value=bytes(letter["value"]),
            headers=[(h["name"], bytes(h["value"])) for h in letter.get("headers") or []],
        )
        outcome = await self._consumption.process(topic, letter["consumer"], handler, record)
        if outcome is Outcome.HANDLED:
            await self._consumption.dead_letters.replayed(letter_id, self.clock.now())
        return {"letter_id": letter_id, "outcome": outcome.value}

    async def _discard_dead_letter(
        self, letter_id: str, body: DiscardDeadLetter
    ) -> dict[str, object]:
        if self._consumption is None:
            raise not_ready()
        if not await self._consumption.dead_letters.discard(
            letter_id, self.clock.now(), body.reason
        ):
            raise ApiProblem(404, "dead_letter_not_found", "Không tìm thấy bản ghi lỗi này.")
        return {"letter_id": letter_id, "discarded": True}

    async def _parked(self, limit: int = 100) -> list[Document]:
        return await self.outbox.parked_entries(min(max(limit, 1), 1000))

    async def _replay_parked(self, event_id: str) -> dict[str, object]:
        if not await self.outbox.replay(event_id):
            raise ApiProblem(404, "parked_event_not_found", "Không tìm thấy sự kiện này.")
        self.wake_relay()
        return {"replayed": True, "event_id": event_id}

    async def _healthz(self) -> dict[str, str]:
        return {"status": "ok", "service": self.service}

    async def _readyz(self) -> JSONResponse:
        checks = await self.ready()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    async def _metrics(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class DiscardDeadLetter(BaseModel):
    """Why a dead letter is closed without being handled (kept with it)."""

    reason: str = Field(min_length=1, max_length=500)


@dataclass(frozen=True)
class StoredRecord:
    """A dead letter shaped like the Kafka record it was, for a replay."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


async def _kafka_ping(broker: KafkaBroker, topics: list[str]) -> bool:
    """Whether the broker answers about our own topics within 2 s. Not ``broker.ping()``: it
    asks for the metadata of every topic in the cluster, which on a shared broker with
    thousands of topics (other deployments, other test runs) took longer than any timeout."""
    try:
        async with asyncio.timeout(2.0):
            described = await broker.config.admin_client.describe_topics(topics)
    except Exception:  # not reachable is an answer, not an error
        return False
    return all(not topic.get("error_code") for topic in described)
