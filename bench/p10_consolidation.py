"""P10: consolidating a period of 1,000 / 10,000 / 100,000 submissions, against reading them.

Data: a synthetic plan per size (an office and communes; three tasks; a count, a number, a
percentage weighted by a count, a yes/no and a text indicator), one document per submission
written straight into consolidate's projection (``submissions.<period_id>``, the layout of
``MongoConsolidateStore.add_submission``, ``insert_many`` in batches of 100). Four submissions
in five are a unit's first revision; the fifth are corrections of one unit in eight (up to
revision 3), so one unit in eight has several revisions. About a tenth arrive after the due.

baocao: the figures path, ``handlers.preview`` on the real store: the period streamed
through the fold, the terms read, the ``ReportConsolidatedPayload`` built and its content
hash taken; what ``_record`` does before it renders, stores and publishes. Rendering the
DOCX/XLSX of 100,000 units is not timed (a document of tens of thousands of pages); it is
timed once at the smallest size, without the PDF.
Baseline: ``find({})`` over the same collection, every document decoded and dropped.
Peak memory: one more run of each with tracemalloc on (Python allocations; slower, not timed),
and, but at the largest size, of the way it was done before the fold (every revision in a
list, then ``consolidate``). One warm-up, at the first size.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from bench.context import Run
from bench.harness import Row, Spread, log, times_text
from bench.system import database_name
from contracts.events import ReportConsolidatedPayload
from contracts.plan import Plan
from services.common.clock import FixedClock
from services.common.mongo import connect, to_millis
from services.common.outbox import Outbox
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.consolidate.documents import Beside, render
from services.consolidate.domain import consolidate, content_hash
from services.consolidate.files import GridFSFileStore
from services.consolidate.handlers import Consolidation, preview
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import SUBMISSIONS, MongoConsolidateStore, MongoTermsStore
from tests.support.plans import six_months

ID = "P10"
GOAL_OF_READ = 3.0
GOAL_GROWTH = 12.0
"""The largest size within this many times the 10× smaller one (linear would be 10×)."""
BATCH = 100
PARALLEL = 3
RESULTS = (
    "Tổ chức {n} buổi tuyên truyền Nghị quyết 35-NQ/TW cho cán bộ, đảng viên và nhân dân; "
    "đăng tải tin, bài trên trang thông tin điện tử của đơn vị; kiểm tra các điểm kinh doanh "
    "dịch vụ văn hóa trên địa bàn."
)


def synthetic_plan(size: int) -> tuple[Plan, Period, int]:
    """A plan with one reporting unit per first revision (four in five of ``size``)."""
    communes = max(1, size * 4 // 5 - 1)
    raw: dict[str, Any] = {
        "format": 2,
        "id": f"kh-p10-{size}",
        "title": "Kế hoạch tổng hợp toàn quốc (đo tải)",
        "issuer": "Bộ Văn hóa",
        "issuer_place": "Hà Nội",
        "effective_from": "2026-01-01",
        "consolidating_unit_id": "van-phong",
        "upward_recipient": "Chính phủ",
        "units": [{"id": "van-phong", "name": "Văn phòng", "kind": "specialised_office"}]
        + [
            {"id": f"xa-{n:06d}", "name": f"UBND xã số {n}", "kind": "commune"}
            for n in range(communes)
        ],
        "groups": [{"id": "cac-xa", "name": "Các xã", "kinds": ["commune"]}],
        "indicators": [
            {"code": "so-buoi", "name": "Số buổi tuyên truyền", "type": "count"},
            {"code": "so-ho", "name": "Số hộ", "type": "count"},
            {
                "code": "ty-le-phu-song",
                "name": "Tỷ lệ hộ được phủ sóng",
                "type": "percentage",
                "aggregation": "weighted_mean",
                "weight": "so-ho",
            },
            {"code": "gio-xu-ly", "name": "Thời gian xử lý", "type": "number", "minimum": 0},
            {"code": "co-ke-hoach", "name": "Đã ban hành kế hoạch", "type": "boolean"},
            {"code": "ghi-chu", "name": "Ghi chú", "type": "text", "max_length": 200},
        ],
        "tasks": [
            {
                "id": "tuyen-truyen",
                "section": "II.1",
                "text": "Tuyên truyền",
                "assignments": [{"unit_id": "van-phong"}, {"group_id": "cac-xa"}],
                "indicators": [{"code": "so-buoi"}, {"code": "co-ke-hoach"}],
            },
            {
                "id": "phu-song",
                "section": "II.2",
                "text": "Phủ sóng phát thanh, truyền hình",
                "assignments": [{"group_id": "cac-xa"}],
                "indicators": [{"code": "so-ho"}, {"code": "ty-le-phu-song"}],
            },
            {
                "id": "kiem-tra",
                "section": "II.3",
                "text": "Kiểm tra",
                "assignments": [{"group_id": "cac-xa"}, {"unit_id": "van-phong"}],
                "indicators": [{"code": "gio-xu-ly"}, {"code": "ghi-chu"}],
            },
        ],
        "schedule": [six_months()],
    }
    plan = Plan.model_validate(raw)
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    return plan, period, communes + 1


def documents(plan: Plan, period: Period, size: int) -> Iterator[dict[str, Any]]:
    """``size`` projection documents, in the order they would have arrived."""
    units = [u.id for u in plan.reporting_units()]
    corrected = max(1, len(units) // 8)
    start = period.opens_at + dt.timedelta(days=1)
    for k in range(size):
        if k < len(units):
            unit_id, revision = units[k], 1
            # One in ten files after the due: late.
            at = period.due_at + dt.timedelta(hours=1) if k % 10 == 9 else start
        else:
            extra = k - len(units)
            unit_id, revision = units[extra % corrected], 2 + extra // corrected
            at = period.due_at + dt.timedelta(days=1, minutes=revision)
        at += dt.timedelta(seconds=k % 86_400)
        yield {
            "_id": f"{plan.id}-{unit_id}-r{revision}",
            "receipt_no": f"TN-2027-{k + 1:06d}",
            "plan_id": plan.id,
            "unit_id": unit_id,
            "revision": revision,
            "received_at": to_millis(at),
            "tasks": [
                {
                    "task_id": "tuyen-truyen",
                    "status": "completed",
                    "results": RESULTS.format(n=k % 17),
                    "indicators": [
                        {"code": "so-buoi", "value": float(k % 17)},
                        {"code": "co-ke-hoach", "value": 1.0, "flag": True},
                    ],
                    "difficulties": "Kinh phí hạn hẹp." if k % 3 == 0 else "",
                    "proposals": "",
                },
                {
                    "task_id": "phu-song",
                    "status": "in_progress",
                    "results": "Phủ sóng các thôn, làng.",
                    "indicators": [
                        {"code": "so-ho", "value": float(500 + k % 900)},
                        {"code": "ty-le-phu-song", "value": float(80 + k % 21)},
                    ],
                    "difficulties": "",
                    "proposals": "Đề nghị hỗ trợ thiết bị." if k % 5 == 0 else "",
                },
                {
                    "task_id": "kiem-tra",
                    "status": "completed",
                    "results": "Kiểm tra định kỳ.",
                    "indicators": [
                        {"code": "gio-xu-ly", "value": float(k % 48) / 2},
                        {"code": "ghi-chu", "value": 0.0, "text": f"Ghi chú {k % 7}"},
                    ],
                    "difficulties": "",
                    "proposals": "",
                },
            ]
            if unit_id != "van-phong"
            else [
                {
                    "task_id": "tuyen-truyen",
                    "status": "completed",
                    "results": RESULTS.format(n=3),
                    "indicators": [{"code": "so-buoi", "value": 3.0}],
                    "difficulties": "",
                    "proposals": "",
                }
            ],
        }


async def _store(db: AsyncDatabase[Any], name: str, docs: Iterator[dict[str, Any]]) -> int:
    collection, pending, stored = db[name], [], 0
    batch: list[dict[str, Any]] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == BATCH:
            pending.append(batch)
            batch = []
        if len(pending) == PARALLEL:
            await asyncio.gather(*(collection.insert_many(b, ordered=False) for b in pending))
            stored += sum(len(b) for b in pending)
            pending = []
    pending.extend([batch] if batch else [])
    await asyncio.gather(*(collection.insert_many(b, ordered=False) for b in pending))
    return stored + sum(len(b) for b in pending)


async def _peak(action: Callable[[], Awaitable[Any]]) -> float:
    """Peak Python allocations while ``action`` runs, in MB (tracemalloc: slower)."""
    tracemalloc.start()
    try:
        await action()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


async def run(run: Run) -> list[Row]:
    client = connect(run.servers.mongo_uri)
    db = client[database_name(run.sub_namespace("p10"), "consolidate")]
    rows: list[Row] = []
    medians: dict[int, float] = {}
    try:
        for size in run.bounds.p10_sizes:
            row = await _one_size(run, db, size, medians.get(size // 10))
            medians[size] = row.figures["consolidate_median"]
            rows.append(row)
    finally:
        await client.drop_database(db.name)
        await client.close()
    return rows


async def _one_size(run: Run, db: AsyncDatabase[Any], size: int, tenth_median: float | None) -> Row:
    plan, period, unit_count = synthetic_plan(size)
    began = time.perf_counter()
    stored = await _store(db, SUBMISSIONS + period.id, documents(plan, period, size))
    seeded = time.perf_counter() - began
    log(f"P10: {stored} submissions of {unit_count} units stored in {seeded:.1f} s")
    clock = FixedClock(period.closes_at + dt.timedelta(days=1))
    store = MongoConsolidateStore(db)
    c = Consolidation(
        Catalog({plan.id: plan}),
        store,
        Outbox(db, clock),
        clock,
        lambda: None,
        ConsolidateMetrics(CollectorRegistry()),
        GridFSFileStore(db),
        terms=MongoTermsStore(db),
    )
    collection = db[SUBMISSIONS + period.id]

    async def read() -> int:
        return sum([1 async for _ in collection.find({})])

    async def figures() -> ReportConsolidatedPayload:
        return await preview(period.id, c=c)

    async def every_revision_listed() -> str:
        listed = [row async for row in store.submissions(period.id)]
        payload = consolidate(
            plan, period, listed, now=clock.now(), trigger="requested", version=1,
            report_id="preview",
        )  # fmt: skip
        return content_hash(payload)

    # Warmed up at the first size only: the larger ones run in a warm process, and a warm-up
    # pass of 100,000 would cost four minutes more a run.
    first = size == run.bounds.p10_sizes[0]
    payload: ReportConsolidatedPayload | None = None
    if first:
        log(f"P10 {size}: warming up")
        assert await read() == size
        payload = await figures()
    reads, folds = [], []
    for rep in range(run.bounds.repetitions):
        began = time.perf_counter()
        await read()
        reads.append(time.perf_counter() - began)
        began = time.perf_counter()
        again = await figures()
        folds.append(time.perf_counter() - began)
        payload = payload or again
        assert again.content_hash == payload.content_hash
        log(f"P10 {size}: repetition {rep + 1}: read {reads[-1]:.2f} s, "
            f"consolidate {folds[-1]:.2f} s")  # fmt: skip
    assert payload is not None  # at least one repetition
    peak_read = await _peak(read)
    peak_fold = await _peak(figures)
    # The way before the fold, for comparison: not at the largest size, where it holds
    # gigabytes and its traced run alone takes minutes.
    last = size == run.bounds.p10_sizes[-1] and len(run.bounds.p10_sizes) > 1
    peak_listed = None if last else await _peak(every_revision_listed)
    log(f"P10 {size}: peak MB read {peak_read:.0f}, fold {peak_fold:.0f}, every revision "
        f"listed {'not measured' if peak_listed is None else f'{peak_listed:.0f}'}")  # fmt: skip
    rendering = None
    if first:
        began = time.perf_counter()
        rendered = await render(payload, plan, draft=False, with_pdf=False, beside=Beside())
        rendering = time.perf_counter() - began
        log(f"P10 {size}: DOCX + XLSX rendered in {rendering:.2f} s "
            f"({sum(len(f.data) for f in rendered.files) / 1e6:.1f} MB)")  # fmt: skip
    await db.drop_collection(SUBMISSIONS + period.id)

    read_s, fold_s = Spread.of(reads), Spread.of(folds)
    ratio = Spread.paired(folds, reads)
    growth = fold_s.median / tenth_median if tenth_median else None
    met = ratio.median <= GOAL_OF_READ and (growth is None or growth <= GOAL_GROWTH)
    return Row(
        ID,
        f"consolidation figures, {size:,} submissions of {unit_count:,} units",
        f"{fold_s.text('s', 2)}; peak {peak_fold:.0f} MB"
        + (f"; {growth:.1f}× the {size // 10:,}" if growth else ""),
        f"read {read_s.text('s', 2)}; peak {peak_read:.0f} MB",
        times_text(ratio),
        f"≤ {GOAL_OF_READ:g}× read"
        + (f"; ≤ {GOAL_GROWTH:g}× the {size // 10:,}" if growth else ""),
        met,
        {
            "size": size,
            "units": unit_count,
            "seed_seconds": round(seeded, 1),
            "consolidate_seconds": folds,
            "consolidate_median": fold_s.median,
            "read_seconds": reads,
            "peak_mb_fold": peak_fold,
            "peak_mb_read": peak_read,
            "peak_mb_every_revision_listed": peak_listed,
            "growth_over_tenth": growth,
            "payload_json_bytes": len(payload.model_dump_json()),
            "render_docx_xlsx_seconds": rendering,
        },
    )
