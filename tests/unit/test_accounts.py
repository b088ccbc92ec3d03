"""Passwords, API tokens, usernames and the sign-in throttle: pure rules."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Role
from services.submissions.accounts import (
    AccountRejected,
    Throttle,
    check_role_unit,
    digests_match,
    hash_password,
    issue_api_token,
    normal_username,
    password_matches,
    token_id_of,
)
from tests.support.plans import make_plan, task, unit

pytestmark = pytest.mark.unit

T0 = dt.datetime(2027, 6, 1, 8, 0, tzinfo=dt.UTC)


def test_passwords_are_argon2id_and_short_ones_are_refused() -> None:
    hashed = hash_password("một-mật-khẩu-dài")
    assert hashed.startswith("$argon2id$")
    assert password_matches(hashed, "một-mật-khẩu-dài")
    assert not password_matches(hashed, "một-mật-khẩu-dàI")
    assert not password_matches(None, "")
    assert not password_matches("không-phải-hash", "x")
    with pytest.raises(AccountRejected) as refused:
        hash_password("ngắn")
    assert refused.value.code == "weak_password"


def test_an_api_token_is_found_by_its_id_and_checked_by_digest() -> None:
    issued = issue_api_token()
    assert token_id_of(issued.secret) == issued.token_id
    assert digests_match(issued.digest, issued.secret)
    assert not digests_match(issued.digest, issued.secret + "x")
    assert issued.secret not in issued.digest
    for bad in ("", "bct_", "bct_zz_x", "Bearer abc", f"bct_{issued.token_id}_"):
        assert token_id_of(bad) is None


@pytest.mark.parametrize("raw", ["a", "Có dấu", "../admin", "x" * 65, "-bắt-đầu"])
def test_usernames_are_plain_and_bounded(raw: str) -> None:
    with pytest.raises(AccountRejected):
        normal_username(raw)


def test_usernames_are_case_insensitive() -> None:
    assert normal_username("  CanBo.Bo-Y ") == "canbo.bo-y"


def test_an_officer_needs_a_known_unit() -> None:
    with pytest.raises(AccountRejected) as missing:
        check_role_unit(Role.OFFICER, None, {"xa-bo-y"})
    assert missing.value.code == "unit_required"
    with pytest.raises(AccountRejected) as unknown:
        check_role_unit(Role.OFFICER, "xa-khac", {"xa-bo-y"})
    assert unknown.value.code == "unknown_unit"
    check_role_unit(Role.ADMIN, None, set())


def test_office_staff_belong_to_a_unit() -> None:
    with pytest.raises(AccountRejected) as missing:
        check_role_unit(Role.OFFICE, None, {"phong-vhtt"})
    assert missing.value.code == "unit_required"
    check_role_unit(Role.OFFICE, "phong-vhtt", {"phong-vhtt"})


def test_office_staff_serve_the_plans_their_unit_or_a_unit_above_it_consolidates() -> None:
    plan = make_plan(
        plan_id="kh-cap",
        consolidating_unit_id="phong-vhtt",
        units=[
            unit("ubnd-tinh", "UBND tỉnh", "province", reports=False),
            unit("ubnd-huyen", "UBND huyện", "district", parent_id="ubnd-tinh"),
            unit("phong-vhtt", "Phòng VH-TT", "specialised_office", parent_id="ubnd-huyen"),
            unit("phong-noi-vu", "Phòng Nội vụ", "specialised_office", parent_id="ubnd-huyen"),
            unit("xa-a", "UBND xã A", "commune", parent_id="ubnd-huyen"),
        ],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["xa-a"], text="Làm")],
    )
    assert plan.overseen_by("phong-vhtt")
    assert plan.overseen_by("ubnd-huyen") and plan.overseen_by("ubnd-tinh")
    assert not plan.overseen_by("phong-noi-vu")  # a sibling office, not above it
    assert not plan.overseen_by("xa-a")
    assert not plan.overseen_by(None)


def test_the_throttle_counts_failures_in_a_sliding_window() -> None:
    throttle = Throttle(3, dt.timedelta(minutes=15))
    for minute in range(3):
        assert throttle.retry_after("canbo", T0 + dt.timedelta(minutes=minute)) == 0
        throttle.failed("canbo", T0 + dt.timedelta(minutes=minute))
    now = T0 + dt.timedelta(minutes=3)
    assert throttle.retry_after("canbo", now) == 12 * 60  # until the first failure ages out
    assert throttle.retry_after("khac", now) == 0
    assert throttle.retry_after("canbo", T0 + dt.timedelta(minutes=15)) == 0
    throttle.succeeded("canbo")
    assert throttle.retry_after("canbo", now) == 0
