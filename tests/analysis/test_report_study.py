"""A study's report from its own data (scores and clinical values in the database) through the admin's page: who it
counts, Table 1 with values not entered and the IDH and 1p/19q rows, Tables 1-8 always numbered."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.analysis.world import clinical_world
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory())
    return client


def page(admin_client, world) -> str:
    response = admin_client.get(f"/analysis/studies/{world.study.pk}/report/")
    assert response.status_code == 200
    return response.content.decode("utf-8")


def text_of(html: str) -> str:
    """The page as a reader sees it: tags gone, entities decoded, white space collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', html, re.S)
    assert match, f"no section {key}"
    return text_of(match.group(1))


def test_a_single_reader_is_counted_and_agreement_says_why_it_is_missing(admin_client) -> None:
    html = page(admin_client, clinical_world(only_first_reader=True))
    text = text_of(html)
    assert "Readers 1 " in text, "the counts must say one reader"
    assert re.search(r"by 1 reader\b(?!s)", text) and "by 0 readers" not in text
    assert "version as fixed effect (one reader)" in text and "agreement needs two readers" in text
    agreement = section(html, "agreement")
    assert "Table 5." in agreement and "not computed" in agreement.lower() and "one reader" in agreement


def test_table1_keeps_a_case_without_age_and_shows_idh_and_1p19q(admin_client) -> None:
    html = page(admin_client, clinical_world())
    table1 = section(html, "table1")
    assert "Age (years)" in table1
    # Five of the six ages: mean ± SD of 61, 44, 70, 38, 57.
    assert "54.0 ± 12.9" in table1
    assert "Age missing 1 (16.7) " in table1, table1
    assert "IDH status" in table1 and "Mutant" in table1 and "Wild type" in table1
    assert "1p/19q codeletion" in table1 and "Codeleted" in table1 and "Intact" in table1
    assert "age must be a number" not in text_of(html)


def test_tables_are_always_numbered_1_to_8_with_a_reason_where_one_cannot_be_computed(admin_client) -> None:
    html = page(admin_client, clinical_world())
    numbers = [int(n) for n in re.findall(r"Table (\d)\. ", text_of(html))]
    assert numbers == [1, 2, 3, 4, 5, 6, 7, 8], numbers
    table2 = section(html, "table2")
    assert "not computed" in table2.lower() and "no ROIs were drawn" in table2
