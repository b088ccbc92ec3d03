"""In-memory stand-ins for the stores, for unit tests: each subclasses the real port.

They keep what MongoDB would keep and refuse what its unique indexes refuse (copies in, copies
out, times cut to milliseconds where the adapter cuts them), and nothing more: a test that
needs a race or an outage subclasses a fake and says so.

The outbox is the real :class:`Outbox` over :class:`MemoryCollection`, a stand-in for the few
collection methods it calls on the handlers' path (intend, commit, abandon, put); anything else
it might ask raises, so the fake cannot silently drift from what the outbox does.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from contracts.envelope import Event
from contracts.events import (
    ExtensionDecidedPayload,
    FilingExceptionGrantedPayload,
    SubmissionReceivedPayload,
)
from contracts.report_v2 import ReportConsolidatedV2Payload
from contracts.topics import ALL_TOPICS
from services.common.clock import Clock
from services.common.mongo import DeadLetters, Document, to_millis
from services.common.outbox import INTENT, READY, Outbox, Ref
from services.consolidate.amendments import LateCause
from services.consolidate.domain import SubmissionRow
from services.consolidate.store import ConsolidateStore, ReportExists, StoredReport, VersionTaken
from services.deadlines.domain import Emission, Reopened, UnitDue, rung_of_key
from services.deadlines.store import (
    EMISSIONS,
    DeadlinesStore,
    TermsStore,
    decision_document,
    skipped_document,
)
from services.notify.domain import Outgoing
from services.notify.sms_rules import Segments
from services.notify.store import Failure, Ledger, message_document
from services.submissions.store import (
    KeyClaim,
    KeyState,
    RevisionTaken,
    SubmissionsStore,
)

EVENT_OF_TOPIC = {t.name: t.event for t in ALL_TOPICS}

# --- a collection, as far as the outbox uses one -------------------------------------------


@dataclass(frozen=True)
class Written:
    matched_count: int = 0
    deleted_count: int = 0


def _matches(document: Document, query: Document) -> bool:
    for field, wanted in query.items():
        value = document.get(field)
        if isinstance(wanted, dict):
            for operator, operand in wanted.items():
                if operator == "$in":
                    if value not in operand:
                        return False
                elif operator == "$lt":
                    if value is None or not value < operand:
                        return False
                else:
                    raise NotImplementedError(f"MemoryCollection: {operator}")
        elif value != wanted:
            return False
    return True


class MemoryCollection:
    """Documents by ``_id`` (unique, as in MongoDB); equality, ``$in`` and ``$lt`` queries."""

    def __init__(self) -> None:
        self.documents: dict[Any, Document] = {}

    def _find(self, query: Document) -> list[Document]:
        return [d for d in self.documents.values() if _matches(d, query)]

    async def insert_one(self, document: Document) -> None:
        if document["_id"] in self.documents:
            raise DuplicateKeyError(f"E11000 duplicate key error: _id {document['_id']!r}")
        self.documents[document["_id"]] = copy.deepcopy(document)

    async def find_one(
        self, query: Document, projection: Document | None = None
    ) -> Document | None:
        found = self._find(query)
        if not found:
            return None
        document = copy.deepcopy(found[0])
        if projection and any(projection.values()):
            kept = {k for k, v in projection.items() if v} | {"_id"}
            document = {k: v for k, v in document.items() if k in kept}
        elif projection:
            document = {k: v for k, v in document.items() if k not in projection}
        return document

    async def update_one(self, query: Document, update: Document) -> Written:
        if set(update) != {"$set"}:
            raise NotImplementedError(f"MemoryCollection: {sorted(update)}")
        found = self._find(query)
        if not found:
            return Written()
        found[0].update(copy.deepcopy(update["$set"]))
        return Written(matched_count=1)

    async def delete_one(self, query: Document) -> Written:
        found = self._find(query)
        if not found:
            return Written()
        del self.documents[found[0]["_id"]]
        return Written(deleted_count=1)

    async def delete_many(self, query: Document) -> Written:
        found = self._find(query)
        for document in found:
            del self.documents[document["_id"]]
        return Written(deleted_count=len(found))


class MemoryDatabase(dict[str, MemoryCollection]):
    def __missing__(self, name: str) -> MemoryCollection:
        self[name] = MemoryCollection()
        return self[name]


class MemoryOutbox(Outbox):
    """The real outbox over in-memory collections, with ways to look inside."""

    def __init__(self, clock: Clock) -> None:
        db = MemoryDatabase()
        super().__init__(db, clock)  # type: ignore[arg-type]
        self.memory = db["outbox"]
        """What ``entries`` holds, for tests to look at."""

    def all(self) -> list[Document]:
        """Every entry once: its ready copy if committed, else the intent (or what is kept)."""
        ready = self.ready.documents  # type: ignore[attr-defined]
        entries = [ready.get(k, d) for k, d in self.memory.documents.items()]
        entries += [d for k, d in ready.items() if k not in self.memory.documents]
        return [copy.deepcopy(d) for d in entries]

    def in_state(self, state: str) -> list[Document]:
        return [d for d in self.all() if d["state"] == state]

    def events(self, state: str = READY) -> list[Event]:
        """The events in ``state`` (ready to publish, by default), as their contract class."""
        return [
            EVENT_OF_TOPIC[d["topic"]].model_validate_json(d["event_json"])
            for d in self.in_state(state)
        ]

    def ready_entries(self) -> list[Document]:
        return self.in_state(READY)

    def intents(self) -> list[Document]:
        return self.in_state(INTENT)


# --- submissions ----------------------------------------------------------------------------


class FakeSubmissionsStore(SubmissionsStore):
    """History insert-only with one document per (period, unit, revision); heads as hints."""

    def __init__(self) -> None:
        self.documents: list[Document] = []
        self.heads: dict[tuple[str, str], Document] = {}
        self.keys: dict[str, Document] = {}
        self.numbers_issued = 0
        self.inserts = 0

    async def next_receipt_number(self) -> int:
        self.numbers_issued += 1
        return self.numbers_issued

    async def head(self, period_id: str, unit_id: str) -> Document | None:
        return copy.deepcopy(self.heads.get((period_id, unit_id)))

    async def latest_in_history(self, period_id: str, unit_id: str) -> Document | None:
        mine = await self.history(period_id, unit_id)
        return mine[-1] if mine else None

    async def insert(self, submission: Document) -> None:
        self.inserts += 1
        self.store(submission)

    def store(self, submission: Document) -> None:
        """The insert itself (for subclasses that play a rival request)."""
        if any(
            d["_id"] == submission["_id"]
            or (d["period_id"], d["unit_id"], d["revision"])
            == (submission["period_id"], submission["unit_id"], submission["revision"])
            for d in self.documents
        ):
            raise RevisionTaken("E11000 one_document_per_revision")
        self.documents.append(copy.deepcopy(submission))

    async def advance_head(self, submission: Document) -> None:
        place = (submission["period_id"], submission["unit_id"])
        current = self.heads.get(place)
        if current is not None and current["revision"] >= submission["revision"]:
            return
        head = {k: v for k, v in submission.items() if k not in ("_id", "tasks")}
        self.heads[place] = {
            **copy.deepcopy(head),
            "_id": submission["unit_id"],
            "submission_id": submission["_id"],
        }

    async def period_heads(self, period_id: str) -> list[Document]:
        return [copy.deepcopy(h) for (p, _), h in self.heads.items() if p == period_id]

    async def get(self, period_id: str, submission_id: str) -> Document | None:
        found = [
            d for d in self.documents if (d["period_id"], d["_id"]) == (period_id, submission_id)
        ]
        return copy.deepcopy(found[0]) if found else None

    async def history(self, period_id: str, unit_id: str) -> list[Document]:
        mine = [d for d in self.documents if (d["period_id"], d["unit_id"]) == (period_id, unit_id)]
        return [copy.deepcopy(d) for d in sorted(mine, key=lambda d: d["revision"])]

    async def by_idempotency_id(self, period_id: str, idempotency_id: str) -> Document | None:
        found = [
            d
            for d in self.documents
            if (d["period_id"], d["idempotency_id"]) == (period_id, idempotency_id)
        ]
        return copy.deepcopy(found[0]) if found else None

    async def claim_key(
        self, key_id: str, fingerprint: str, period_id: str, now: dt.datetime, ttl: dt.timedelta
    ) -> KeyClaim:
        held = self.keys.get(key_id)
        if held is not None:
            return KeyClaim(
                state=KeyState(held["state"]),
                fingerprint=held["fingerprint"],
                submission_id=held["submission_id"],
                period_id=held["period_id"],
                claimed_at=held["claimed_at"],
            )
        self.keys[key_id] = {
            "fingerprint": fingerprint,
            "state": KeyState.IN_PROGRESS.value,
            "period_id": period_id,
            "submission_id": None,
            "claimed_at": to_millis(now),
            "expires_at": to_millis(now + ttl),
        }
        return KeyClaim(state=KeyState.NEW, fingerprint=fingerprint)

    async def complete_key(self, key_id: str, submission_id: str) -> None:
        if key_id in self.keys:
            self.keys[key_id].update(state=KeyState.DONE.value, submission_id=submission_id)

    async def release_key(self, key_id: str) -> None:
        if self.keys.get(key_id, {}).get("state") == KeyState.IN_PROGRESS.value:
            del self.keys[key_id]

    async def forget_expired_keys(self, now: dt.datetime) -> int:
        expired = [k for k, v in self.keys.items() if v["expires_at"] < to_millis(now)]
        for key in expired:
            del self.keys[key]
        return len(expired)


# --- consolidate ----------------------------------------------------------------------------


class FakeConsolidateStore(ConsolidateStore):
    """The projection per period, and report versions unique by id and by version."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, SubmissionRow]] = {}
        self.stored: dict[str, dict[str, StoredReport]] = {}
        self.closed: dict[str, dt.datetime] = {}
        self.late: dict[str, LateCause] = {}

    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        period = self.rows.setdefault(submission.period_id, {})
        if submission.submission_id in period:
            return False
        period[submission.submission_id] = SubmissionRow(
            submission_id=submission.submission_id,
            receipt_no=submission.receipt_no,
            unit_id=submission.unit_id,
            revision=submission.revision,
            received_at=to_millis(submission.received_at),
            tasks=tuple(submission.tasks),
        )
        return True

    async def submissions(self, period_id: str) -> AsyncIterator[SubmissionRow]:
        for row in list(self.rows.get(period_id, {}).values()):
            yield row

    async def report(self, period_id: str, report_id: str) -> StoredReport | None:
        return self.stored.get(period_id, {}).get(report_id)

    async def latest(self, period_id: str) -> StoredReport | None:
        found = self.stored.get(period_id, {}).values()
        return max(found, key=lambda r: r.payload.version, default=None)

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        period = self.stored.setdefault(payload.period_id, {})
        if payload.report_id in period:
            raise ReportExists(payload.report_id)
        if any(r.payload.version == payload.version for r in period.values()):
            raise VersionTaken(f"{payload.period_id} v{payload.version}")
        period[payload.report_id] = StoredReport(
            payload, cause, content_hash, event_id, v1_event_id
        )

    async def reports(self, period_id: str) -> list[StoredReport]:
        found = self.stored.get(period_id, {}).values()
        return sorted(found, key=lambda r: -r.payload.version)

    async def mark_closed(self, period_id: str, at: dt.datetime) -> None:
        self.closed.setdefault(period_id, to_millis(at))

    async def is_closed(self, period_id: str) -> bool:
        return period_id in self.closed

    async def add_late_cause(self, cause: LateCause) -> None:
        self.late.setdefault(cause.key, cause)

    async def late_causes(self) -> list[LateCause]:
        return list(self.late.values())

    async def forget_late_causes(self, keys: list[str]) -> None:
        for key in keys:
            self.late.pop(key, None)


# --- deadlines ------------------------------------------------------------------------------


class FakeDeadlinesStore(DeadlinesStore):
    """Who reported, and the decisions; a decision's event goes through ``outbox``."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.submitted: dict[str, dict[str, dt.datetime]] = {}
        self.returned: dict[str, dict[str, tuple[dt.datetime, dt.datetime | None]]] = {}
        self.emissions: dict[str, Document] = {}
        self._decided: set[str] = set()

    def restarted(self) -> FakeDeadlinesStore:
        """The same stored data seen by a new process (which remembers nothing yet)."""
        again = FakeDeadlinesStore(self.outbox)
        again.submitted, again.emissions = self.submitted, self.emissions
        again.returned = self.returned
        return again

    async def record_return(self, period_id: str, unit_id: str, returned_at: dt.datetime) -> None:
        units = self.returned.setdefault(period_id, {})
        if unit_id not in units or units[unit_id][0] < to_millis(returned_at):
            units[unit_id] = (to_millis(returned_at), None)

    async def returned_units(self, period_ids: Iterable[str]) -> dict[str, dict[str, dt.datetime]]:
        found = {
            p: {u: at for u, (at, again) in self.returned.get(p, {}).items() if again is None}
            for p in period_ids
        }
        return {p: units for p, units in found.items() if units}

    async def record_skipped(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> dict[str, int]:
        recorded: dict[str, int] = {}
        for emission in emissions:
            for key in emission.skipped:
                if key not in self.emissions:
                    self.emissions[key] = skipped_document(key, emission, recorded_at)
                    rung = rung_of_key(key)
                    recorded[rung] = recorded.get(rung, 0) + 1
            self._decided.update(emission.skipped)
        return recorded

    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        returned = self.returned.get(period_id, {})
        if unit_id in returned and returned[unit_id][0] < to_millis(received_at):
            returned[unit_id] = (returned[unit_id][0], to_millis(received_at))
        units = self.submitted.setdefault(period_id, {})
        if unit_id in units:
            return False
        units[unit_id] = to_millis(received_at)
        return True

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        return {p: set(self.submitted[p]) for p in period_ids if self.submitted.get(p)}

    def known_decided(self, key: str) -> bool:
        return key in self._decided

    async def decisions(self, period_id: str) -> list[Document]:
        return [d for d in self.emissions.values() if d["period_id"] == period_id and d["unit_id"]]

    async def record_emissions(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> list[Emission]:
        recorded = []
        for emission in emissions:
            if emission.key in self._decided:
                continue
            try:
                entry = await self.outbox.intend(emission.serialized, Ref(EMISSIONS, emission.key))
            except DuplicateKeyError:
                self._decided.add(emission.key)
                continue
            self._decided.add(emission.key)
            if emission.key in self.emissions:
                await self.outbox.abandon(entry)
                continue
            self.emissions[emission.key] = decision_document(emission, entry["_id"], recorded_at)
            await self.outbox.commit(entry)
            recorded.append(emission)
        return recorded


class FakeTermsStore(TermsStore):
    """Approved extensions and filing exceptions by period and unit (the latest decision)."""

    def __init__(self) -> None:
        self.extensions: dict[str, dict[str, Document]] = {}
        self.exceptions: dict[str, dict[str, Document]] = {}

    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        if decided.decision != "approved" or decided.new_due_at is None:
            return
        units = self.extensions.setdefault(decided.period_id, {})
        earlier = units.get(decided.unit_id)
        if earlier is None or earlier["decided_at"] < decided.decided_at:
            units[decided.unit_id] = {
                "request_id": decided.request_id,
                "due_at": decided.new_due_at,
                "closes_at": decided.new_closes_at or decided.new_due_at,
                "reason": decided.reason,
                "decided_at": decided.decided_at,
            }

    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        units = self.exceptions.setdefault(granted.period_id, {})
        earlier = units.get(granted.unit_id)
        if earlier is None or earlier["decided_at"] < granted.granted_at:
            units[granted.unit_id] = {
                "exception_id": granted.exception_id,
                "until": granted.until,
                "reason": granted.reason,
                "decided_at": granted.granted_at,
            }

    async def extended(self, period_ids: Iterable[str]) -> dict[str, dict[str, UnitDue]]:
        found = {
            p: {
                u: UnitDue(d["due_at"], d["closes_at"], d["decided_at"])
                for u, d in self.extensions.get(p, {}).items()
            }
            for p in period_ids
        }
        return {p: units for p, units in found.items() if units}

    async def reopened(self, period_ids: Iterable[str]) -> dict[str, dict[str, Reopened]]:
        found = {
            p: {
                u: Reopened(d["until"], d["decided_at"])
                for u, d in self.exceptions.get(p, {}).items()
            }
            for p in period_ids
        }
        return {p: units for p, units in found.items() if units}

    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        return self.extensions.get(period_id, {}).get(unit_id)

    async def exception(self, period_id: str, unit_id: str) -> Document | None:
        return self.exceptions.get(period_id, {}).get(unit_id)


# --- notify ---------------------------------------------------------------------------------


class FakeLedger(Ledger):
    """In flight, claimed once ever, finished once; leases keyed as the Mongo ledger keys them."""

    def __init__(self) -> None:
        self.inflight: dict[str, Document] = {}
        self.deliveries: set[str] = set()
        self.outcomes: dict[str, Document] = {}
        self.leases: dict[str, str] = {}

    async def claim(
        self, message: Outgoing, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        nid = message.notification_id
        if nid in self.inflight:
            return False
        if nid in self.deliveries:
            return False
        self.inflight[nid] = {
            "_id": nid,
            **message_document(message),
            "attempts": 0,
            "owner": owner,
            "lease_until": to_millis(now + lease),
            "next_attempt_at": to_millis(now),
            "created_at": to_millis(now),
            "last_error": None,
        }
        self.deliveries.add(nid)
        return True

    async def due(self, now: dt.datetime, limit: int) -> list[Document]:
        moment = to_millis(now)
        ready = [
            copy.deepcopy(e)
            for e in self.inflight.values()
            if e["next_attempt_at"] <= moment and e["lease_until"] <= moment
        ]
        return sorted(ready, key=lambda e: e["next_attempt_at"])[:limit]

    async def take_over(
        self, entry: Document, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        lease_key = f"{entry['_id']}|{entry['attempts']}|{entry['lease_until'].isoformat()}"
        if lease_key in self.leases:
            return False
        self.leases[lease_key] = owner
        self.deliveries.add(entry["_id"])
        if entry["_id"] in self.inflight:
            self.inflight[entry["_id"]].update(owner=owner, lease_until=to_millis(now + lease))
        return True

    async def attempted(
        self, notification_id: str, attempts: int, error: str, next_at: dt.datetime
    ) -> None:
        if notification_id in self.inflight:
            self.inflight[notification_id].update(
                attempts=attempts,
                last_error=error[:1000],
                next_attempt_at=to_millis(next_at),
                lease_until=to_millis(next_at),
            )

    async def finish(
        self,
        message: Outgoing,
        status: str,
        attempts: int,
        event_id: str,
        now: dt.datetime,
        failure: Failure | None = None,
        sms: Segments | None = None,
    ) -> bool:
        recorded = message.notification_id not in self.outcomes
        self.outcomes.setdefault(
            message.notification_id,
            {
                "_id": message.notification_id,
                "status": status,
                "attempts": attempts,
                "recipient": message.recipient,
                "finished_at": to_millis(now),
                "event_id": event_id,
                **(failure.document() if failure else {}),
                **({"sms_segments": sms.count, "sms_encoding": sms.encoding} if sms else {}),
            },
        )
        self.inflight.pop(message.notification_id, None)
        return recorded

    async def list(
        self,
        limit: int,
        *,
        unit_id: str | None = None,
        period_id: str | None = None,
        plan_ids: Collection[str] | None = None,
    ) -> list[Document]:
        def wanted(d: Document) -> bool:
            return (
                unit_id in (None, d["unit_id"])
                and period_id in (None, d["period_id"])
                and (plan_ids is None or d["plan_id"] in plan_ids)
            )

        pending = [
            {**copy.deepcopy(e), "status": "pending"} for e in self.inflight.values() if wanted(e)
        ]
        finished = sorted(
            (o for o in self.outcomes.values() if wanted(o)),
            key=lambda o: o["finished_at"],
            reverse=True,
        )
        return (pending + [copy.deepcopy(o) for o in finished])[:limit]


# --- dead letters ---------------------------------------------------------------------------


class MemoryDeadLetters(DeadLetters):
    """Dead letters keyed by position (consumer, topic, partition, offset), as the real ones."""

    def __init__(self) -> None:
        self.letters: dict[str, Document] = {}

    async def put(
        self,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        reason: str,
        error: str,
        attempts: int,
        at: dt.datetime,
    ) -> None:
        letter_id = f"{consumer}|{topic}|{partition}|{offset}"
        outcome = {"reason": reason, "error": error[:2000], "attempts": attempts}
        if letter_id in self.letters:
            self.letters[letter_id].update(outcome)
            return
        self.letters[letter_id] = {
            "_id": letter_id,
            "consumer": consumer,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key,
            "value": value,
            "headers": list(headers),
            "at": to_millis(at),
            **outcome,
        }

    async def list(self, limit: int = 100) -> list[Document]:
        return [copy.deepcopy(d) for d in self.letters.values()][:limit]

    async def get(self, letter_id: str) -> Document | None:
        return copy.deepcopy(self.letters.get(letter_id))
