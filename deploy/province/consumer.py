"""The province's side: read district reports from Kafka, written from the contract alone.

This file imports nothing of baocao. It knows only what ``contracts/asyncapi.json`` and
``contracts/schemas/baocao.report-consolidated.v1.json`` publish: the topic name and its prefix
rule, the envelope, the key and headers, and that a period's reports come as versions of which
the highest wins. It validates every record against the JSON Schema, keeps the highest version
per period, downloads the rendered document by its URL (with the province's read-only API token,
exchanged for a short-lived token as the API says), checks its SHA-256, and prints one line per
version.

    python deploy/province/consumer.py --bootstrap 127.0.0.1:9092 \\
        --namespace "$BAOCAO_NAMESPACE" --token "$PROVINCE_TOKEN"

``PROVINCE_TOKEN``: an API token (``bct_...``) the admin issued to the read-only account.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
TOPIC = "baocao.report-consolidated.v1"


@dataclass
class Province:
    validator: Draft202012Validator
    portal: str
    api_token: str | None
    latest: dict[str, int] = field(default_factory=dict)
    """period_id -> highest version seen."""
    _access: str | None = None

    def accept(self, value: bytes) -> tuple[dict[str, Any] | None, str]:
        """The event if it is valid and news, and a line saying what happened to it."""
        try:
            event = json.loads(value)
        except ValueError as error:
            return None, f"REFUSED not JSON: {error}"
        errors = sorted(self.validator.iter_errors(event), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(root)"
            return None, f"REFUSED invalid at {where}: {first.message}"
        payload = event["payload"]
        period, version = payload["period_id"], payload["version"]
        if version <= self.latest.get(period, 0):
            return None, f"SKIPPED {period} v{version}: v{self.latest[period]} already kept"
        self.latest[period] = version
        return event, ""

    async def download(self, http: httpx.AsyncClient, document: dict[str, Any]) -> str:
        url = document.get("url")
        if not url:
            return "no document URL"
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
            return f"download failed: HTTP {response.status_code}"
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != document["sha256"]:
            return f"SHA-256 MISMATCH ({digest[:12]} != {document['sha256'][:12]})"
        return f"document ok ({len(response.content)} bytes, sha256 {digest[:12]})"


def summary(event: dict[str, Any], document_note: str) -> str:
    p = event["payload"]
    supersedes = f" supersedes {p['supersedes']}" if p.get("supersedes") else ""
    return (
        f"{p['period_id']} v{p['version']}{supersedes}: {p['received']}/{p['expected']} units "
        f"reported ({p['on_time']} on time, {p['late']} late, {p['missing']} missing); "
        f"{document_note}"
    )


async def consume(args: argparse.Namespace) -> int:
    schema = json.loads((Path(args.contracts) / "schemas" / f"{TOPIC}.json").read_text())
    province = Province(Draft202012Validator(schema), args.portal.rstrip("/"), args.token)
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
                        event, note = province.accept(record.value or b"")
                        if event is None:
                            print(note, flush=True)
                            continue
                        document = event["payload"].get("document")
                        done = (
                            await province.download(http, document) if document else ("no document")
                        )
                        print(summary(event, done), flush=True)
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
