"""Personal data in free text: the variants an outside probe used to get round the old filter."""

from __future__ import annotations

import pytest

from keepwell.pii import NameIndex, personal_data_in

NAMES = NameIndex(["Hana Tanaka", "Cara Fischer", "José Álvarez Ruiz", "Tanaka Holdings Ltd", None])

NUMBERS = [
    "+44 7700-90-08 23",  # the old date rule ate 7700-90-08
    "call +44 7700 900123 after 5",
    "06.12.34.56.78",
    "(020) 7946 0958",
    "447700900692",
    "card 4111 1111 1111 1111",
    "IBAN GB29 NWBK 6016 1331 9268 19",
    "０７７００ ９００１２３",  # full-width digits
    "07700/900/123",
    "2026-01-05 447700900692",  # a date does not hide the number after it
]
EMAILS = [
    "j.smith@example.com",
    "j.smith(at)example.com",
    "j.smith (at) example",
    "j.smith[at]example.com",
    "j.smith{at}example.com",
    "a @ b",
    "j.smith＠example.com",  # full-width at sign
    "write to jsmith at example dot com",
    "jsmith at example.com",
]
NAMED = [
    "Hana Tanaka prefers evenings",
    "hana  TANAKA prefers evenings",
    "spoke to tanaka, hana? no: Hana-Tanaka",
    "Jose Alvarez Ruiz called back",  # accents aside
    "Cara Fischer's daughter answered",
]
CLEAN = [
    "prefers evenings, call after 18:30",
    "called on 2026-01-05 and 05.01.2026 at 09:05:00",
    "asked about the 12-month bond; 3 products, 250,000 in funds",
    "meeting at the branch next week",
    "Tanaka is a common word here? only the full name counts",
    "Hana will call back",
    "",
]


@pytest.mark.parametrize("text", NUMBERS)
def test_numbers_are_found_whatever_separates_the_digits(text):
    assert personal_data_in(text, NAMES) == "a phone, account or card number"


@pytest.mark.parametrize("text", EMAILS)
def test_email_addresses_are_found_however_written(text):
    assert personal_data_in(text, NAMES) == "an e-mail address"


@pytest.mark.parametrize("text", NAMED)
def test_a_customers_name_is_found(text):
    assert personal_data_in(text, NAMES) == "a customer's name"


@pytest.mark.parametrize("text", CLEAN)
def test_ordinary_notes_pass(text):
    assert personal_data_in(text, NAMES) is None


def test_names_are_only_looked_for_when_an_index_is_given():
    assert personal_data_in("Hana Tanaka prefers evenings") is None
    assert len(NAMES) == 4  # single-word and missing names are not indexed
