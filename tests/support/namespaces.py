"""Forgetting a test's namespace: its topics and databases, once the test is done with them.

Every test system runs under a fresh namespace, so nothing needs deleting for correctness; but
a full run leaves thousands of topics behind otherwise, and a broker with that many answers
metadata requests (every client's start, every readiness check) ever more slowly.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)


async def forget(namespace: str, *, kafka_bootstrap: str, mongo_uri: str) -> None:
    """Delete the namespace's topics and drop its databases; best effort (a broker being
    restarted by a fault test is no reason to fail another test's teardown)."""
    try:
        async with asyncio.timeout(30):
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            await admin.start()
            try:
                topics = [t for t in await admin.list_topics() if t.startswith(namespace + ".")]
                if topics:
                    await admin.delete_topics(topics)
            finally:
                await admin.close()
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_uri)
            try:
                prefix = namespace.replace("-", "_") + "_"
                for name in await client.list_database_names():
                    if name.startswith(prefix):
                        await client.drop_database(name)
            finally:
                await client.close()
    except Exception as error:
        log.warning("namespace %s not forgotten: %s: %s", namespace, type(error).__name__, error)


def forget_now(namespace: str, *, kafka_bootstrap: str, mongo_uri: str) -> None:
    """``forget`` from synchronous teardown code, on a thread of its own: ``asyncio.run`` in
    this thread would unset the event loop pytest-asyncio keeps for the module."""
    thread = threading.Thread(
        target=asyncio.run,
        args=(forget(namespace, kafka_bootstrap=kafka_bootstrap, mongo_uri=mongo_uri),),
        name=f"forget-{namespace}",
    )
    thread.start()
    thread.join()
