"""How the fault suite counts mail: what it calls lost, duplicated, or a tolerated resend."""

from __future__ import annotations

import pytest

from tests.faults.harness import count_mail

pytestmark = pytest.mark.unit

EXPECTED = [("r", "a@x.example"), ("r", "b@x.example"), ("r", "c@x.example")]


def test_one_message_each_is_neither_lost_nor_duplicated() -> None:
    mail = count_mail(EXPECTED, {p: [f"<{p[1]}>"] for p in EXPECTED})
    assert (mail.lost, mail.duplicated, mail.resent) == (0, 0, 0)


def test_a_recipient_without_mail_is_lost() -> None:
    mail = count_mail(EXPECTED, {p: [f"<{p[1]}>"] for p in EXPECTED[:2]})
    assert (mail.lost, mail.duplicated, mail.missing) == (1, 0, [EXPECTED[2]])


def test_a_second_message_id_is_a_duplicate_even_after_a_crash() -> None:
    found = {p: [f"<{p[1]}>"] for p in EXPECTED}
    found[EXPECTED[0]].append("<another>")
    mail = count_mail(EXPECTED, found, in_flight=8, resendable=[EXPECTED[0]])
    assert mail.duplicated == 1


def test_only_the_entries_in_flight_may_be_resent_once() -> None:
    found = {p: [f"<{p[1]}>"] for p in EXPECTED}
    found[EXPECTED[0]].append(f"<{EXPECTED[0][1]}>")  # in flight at the crash: tolerated
    assert count_mail(EXPECTED, found, resendable=[EXPECTED[0]]).duplicated == 0
    found[EXPECTED[1]].append(f"<{EXPECTED[1][1]}>")  # not in flight: a duplicate
    mail = count_mail(EXPECTED, found, resendable=[EXPECTED[0]])
    assert (mail.duplicated, mail.resent) == (1, 2)
    found[EXPECTED[0]].append(f"<{EXPECTED[0][1]}>")  # in flight, but sent a third time
    assert count_mail(EXPECTED, found, resendable=[EXPECTED[0]]).duplicated == 2


def test_without_names_resends_are_tolerated_up_to_the_number_in_flight() -> None:
    found = {p: [f"<{p[1]}>", f"<{p[1]}>"] for p in EXPECTED}
    assert count_mail(EXPECTED, found, in_flight=3).duplicated == 0
    assert count_mail(EXPECTED, found, in_flight=2).duplicated == 1
