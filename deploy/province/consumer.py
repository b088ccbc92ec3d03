"""The province's side: read district reports from Kafka, written from the contract alone.

This file imports nothing of baocao. It knows only what ``contracts/asyncapi.json`` and the
schemas it names publish: the topic ``baocao.report-consolidated.v2`` and its prefix rule, the
envelope, the key and headers, that a period's reports come as versions of which the highest
wins, and that each version's per-unit detail is a JSON file the event names (URL, SHA-256,
media type, size; its content described by ``baocao.report-consolidated-detail.v2.json``).

For each record it validates the event against the JSON Schema, keeps the highest version per
period, exchanges the province's read-only API token for a short-lived one (as the API says),
downloads the DOCX and the detail file and checks the SHA-256 of both, validates the detail,
checks that its units add up to the event's counts and recomputes every indicator's aggregate
from the units' answers, and prints one line per version.

    python deploy/province/consumer.py --bootstrap 127.0.0.1:9092 \\
        --namespace "$BAOCAO_NAMESPACE" --token "$PROVINCE_TOKEN"

``PROVINCE_TOKEN``: an API token (``bct_...``) the admin issued to the read-only account.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
TOPIC = "baocao.report-consolidated.v2"
DETAIL_SCHEMA = "baocao.report-consolidated-detail.v2"


class FetchFailed(Exception):
    """A file the event names could not be downloaded, or is not the file the event names."""


def validator(contracts: Path, name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((contracts / "schemas" / f"{name}.json").read_text()))


def first_error(checker: Draft202012Validator, document: Any) -> str | None:
    errors = sorted(checker.iter_errors(document), key=lambda e: list(e.path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].path) or "(root)"
    return f"invalid at {where}: {errors[0].message}"


@dataclass
class Province:
    events: Draft202012Validator
    details: Draft202012Validator
    portal: str
    api_token: str | None
    latest: dict[str, int] = field(default_factory=dict)
    """period_id -> highest version seen."""
    _access: str | None = None

    @classmethod
    def from_contracts(cls, contracts: Path, portal: str, api_token: str | None) -> Province:
        return cls(
            validator(contracts, TOPIC), validator(contracts, DETAIL_SCHEMA), portal, api_token
        )

    def accept(self, value: bytes) -> tuple[dict[str, Any] | None, str]:
        """The event if it is valid and news, and a line saying what happened to it."""
        try:
            event = json.loads(value)
        except ValueError as error:
            return None, f"REFUSED not JSON: {error}"
        problem = first_error(self.events, event)
        if problem:
            return None, f"REFUSED {problem}"
        payload = event["payload"]
        period, version = payload["period_id"], payload["version"]
        if version <= self.latest.get(period, 0):
            return None, f"SKIPPED {period} v{version}: v{self.latest[period]} already kept"
        self.latest[period] = version
        return event, ""

    async def fetch(self, http: httpx.AsyncClient, named: dict[str, Any]) -> bytes:
        """The bytes of a file the event names (``url``, ``sha256``, ``size`` if given)."""
        url = named.get("url")
        if not url:
            raise FetchFailed("no URL")
        if self._access is None and self.api_token:
            answer = await http.post(
                f"{self.portal}/api/v1/auth/token",
                headers={"Authorization": f"Bearer {self.api_token}"},
            )
            answer.raise_for_status()
            self._access = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._access}"} if self._access else {}
        response = await http.get(url, headers=headers)
        if response.status_code != 200:
            raise FetchFailed(f"download failed: HTTP {response.status_code}")
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != named["sha256"]:
            raise FetchFailed(f"SHA-256 MISMATCH ({digest[:12]} != {named['sha256'][:12]})")
        if named.get("size") is not None and len(response.content) != named["size"]:
            raise FetchFailed(f"SIZE MISMATCH ({len(response.content)} != {named['size']})")
        return response.content

    async def download(self, http: httpx.AsyncClient, document: dict[str, Any]) -> str:
        """The DOCX, checked; what to print about it."""
        try:
            data = await self.fetch(http, document)
        except FetchFailed as error:
            return f"document: {error}"
        digest = hashlib.sha256(data).hexdigest()
        return f"document ok ({len(data)} bytes, sha256 {digest[:12]})"

    async def detail(
        self, http: httpx.AsyncClient, payload: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str]:
        """The detail file, checked against its SHA-256, its schema and the event's figures."""
        try:
            data = await self.fetch(http, payload["detail"])
            detail = json.loads(data.decode("utf-8"))
        except (FetchFailed, ValueError) as error:
            return None, f"detail: {error}"
        problem = first_error(self.details, detail) or disagreement(payload, detail)
        if problem:
            return None, f"detail REFUSED {problem}"
        digest = hashlib.sha256(data).hexdigest()
        return detail, f"detail ok ({len(detail['units'])} units, sha256 {digest[:12]})"


def disagreement(payload: dict[str, Any], detail: dict[str, Any]) -> str | None:
    """Where the detail does not add up to what the event says, if anywhere."""
    if (detail["plan_id"], detail["period_id"]) != (payload["plan_id"], payload["period_id"]):
        return f"of another period: {detail['period_id']}"
    statuses = Counter(u["status"] for u in detail["units"])
    counted = (len(detail["units"]), statuses["on_time"], statuses["late"], statuses["missing"])
    said = (payload["expected"], payload["on_time"], payload["late"], payload["missing"])
    if counted != said:
        return f"units (expected, on time, late, missing) {counted}, the event says {said}"
    return None


def recompute(indicator: dict[str, Any], answers: list[dict[str, Any]]) -> float | None:
    """An indicator's aggregate from the units' answers, by the rule the event names."""
    how = indicator["aggregation"]
    if how == "list":
        return None
    if how == "count_yes":
        return float(sum(1 for a in answers if a.get("flag") or (a.get("value") or 0) != 0))
    figures = [a["value"] for a in answers if a.get("value") is not None]
    if not figures:
        return None
    if how == "sum":
        return math.fsum(figures)
    if how == "mean":
        return math.fsum(figures) / len(figures)
    if how == "min":
        return float(min(figures))
    if how == "max":
        return float(max(figures))
    # weighted_mean: an answer without a weight is left out
    weighted = [(a["value"], a["weight"]) for a in answers if a.get("weight") is not None]
    total_weight = math.fsum(w for _, w in weighted)
    return math.fsum(v * w for v, w in weighted) / total_weight if total_weight > 0 else None


def recomputed(payload: dict[str, Any], detail: dict[str, Any]) -> str:
    """Every aggregate recomputed from the detail and compared with the event's."""
    answers = {i["code"]: i["values"] for i in detail["indicators"]}
    wrong = []
    for indicator in payload["indicator_totals"]:
        mine = recompute(indicator, answers.get(indicator["code"], []))
        theirs = indicator["value"]
        same = (mine is None and theirs is None) or (
            mine is not None and theirs is not None and math.isclose(mine, theirs, rel_tol=1e-9)
        )
        if not same:
            wrong.append(f"{indicator['code']} {mine} != {theirs}")
    count = len(payload["indicator_totals"])
    if wrong:
        return f"FIGURES DIFFER: {'; '.join(wrong)}"
    return f"{count} indicator(s) recomputed, all agree"


def summary(event: dict[str, Any], *notes: str) -> str:
    p = event["payload"]
    supersedes = f" supersedes {p['supersedes']}" if p.get("supersedes") else ""
    return (
        f"{p['period_id']} v{p['version']}{supersedes}: {p['received']}/{p['expected']} units "
        f"reported ({p['on_time']} on time, {p['late']} late, {p['missing']} missing); "
        + "; ".join(notes)
    )


async def handle(province: Province, http: httpx.AsyncClient, value: bytes) -> str:
    """The line printed for one record."""
    event, note = province.accept(value)
    if event is None:
        return note
    payload = event["payload"]
    document = payload.get("document")
    notes = [await province.download(http, document) if document else "no document"]
    detail, note = await province.detail(http, payload)
    notes.append(note)
    if detail is not None:
        notes.append(recomputed(payload, detail))
    return summary(event, *notes)


async def consume(args: argparse.Namespace) -> int:
    province = Province.from_contracts(Path(args.contracts), args.portal.rstrip("/"), args.token)
    topic = f"{args.namespace}.{TOPIC}" if args.namespace else TOPIC
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            while args.max_messages is None or seen < args.max_messages:
                batch = await consumer.getmany(timeout_ms=int(args.idle_seconds * 1000))
                if not batch:
                    if args.idle_seconds and args.stop_when_idle:
                        break
                    continue
                for records in batch.values():
                    for record in records:
                        seen += 1
                        print(await handle(province, http, record.value or b""), flush=True)
                await consumer.commit()  # only what was printed: at least once, like baocao
    finally:
        await consumer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--namespace", default="", help="the deployment's BAOCAO_NAMESPACE")
    parser.add_argument("--group", default="province")
    parser.add_argument("--portal", default="http://127.0.0.1:8000", help="where tokens come from")
    parser.add_argument("--token", help="the province's read-only API token (bct_...)")
    parser.add_argument("--contracts", default=str(CONTRACTS))
    parser.add_argument("--max-messages", type=int)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--stop-when-idle", action="store_true")
    return asyncio.run(consume(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
