"""Keyset paging: every match exactly once, even while rows are inserted; across kinds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from codoc_fhir.warehouse import schema
from tests.factories import NOW, make_patient, make_stay
from tests.search.helpers import at, fact, ids, link


def page_through(client, url: str, on_page=None) -> tuple[list[str], list[dict]]:
    seen: list[str] = []
    bundles = []
    while url:
        bundle = client.get(url).json()
        bundles.append(bundle)
        seen += ids(bundle)
        if on_page:
            on_page(len(bundles))
        url = link(bundle, "next")
    return seen, bundles


@pytest.mark.parametrize("sort", ["date", "-date", "_id", "-_lastUpdated,date"])
def test_paging_returns_every_match_once_while_rows_are_inserted(client, engine, sort):
    patient = make_patient(engine)
    start = at("2024-03-01T00:00:00Z")
    # pairs of facts share a date, so the cursor must break ties on the key
    original = [
        str(fact(engine, patient_num=patient, when=start + timedelta(hours=index // 2)))
        for index in range(30)
    ]

    def insert_more(page: int) -> None:
        for offset in (-5, 0, 7, 40):  # before, at, inside and after the range
            fact(engine, patient_num=patient, when=start + timedelta(hours=offset + page))

    seen, bundles = page_through(
        client, f"/v4.3.0/Procedure?subject=Patient/{patient}&_count=7&_sort={sort}", insert_more
    )
    assert len(seen) == len(set(seen)), "a row was answered twice"
    assert set(original) <= set(seen), "a row present from the start was skipped"
    assert bundles[0]["total"] == 30


def test_previous_links_walk_back_to_the_first_page(client, engine):
    patient = make_patient(engine)
    for index in range(9):
        fact(engine, patient_num=patient, when=at("2024-03-01T00:00:00Z") + timedelta(days=index))
    forward, bundles = page_through(client, "/v4.3.0/Procedure?_count=4&_sort=-date")
    assert forward == [str(number) for number in range(9, 0, -1)]
    backward: list[str] = []
    url = link(bundles[-1], "previous")
    while url:
        bundle = client.get(url).json()
        backward = ids(bundle) + backward
        url = link(bundle, "previous")
    assert backward == forward[:8]


def _movement(engine, patient: int, stay: int, hour: int) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                schema.dwh_patient_mvt.insert()
                .values(
                    patient_num=patient,
                    stay_num=stay,
                    entry_date=at("2024-01-10T00:00:00Z") + timedelta(hours=hour),
                    status="finished",
                    class_code="IMP",
                    update_date=NOW + timedelta(minutes=hour),
                    row_version=1,
                )
                .returning(schema.dwh_patient_mvt.c.mvt_num)
            ).scalar_one()
        )


def test_a_type_served_by_several_tables_pages_across_them(client, engine):
    patient = make_patient(engine)
    stays = [
        make_stay(engine, patient_num=patient, entry_date=at("2024-01-10T00:00:00Z"))
        for _ in range(4)
    ]
    movements = [_movement(engine, patient, stays[0], hour) for hour in range(5)]
    expected = {str(stay) for stay in stays} | {f"movement-{num}" for num in movements}
    for sort in ("_id", "-_lastUpdated", "_lastUpdated,-_id"):
        seen, bundles = page_through(client, f"/v4.3.0/Encounter?_count=3&_sort={sort}")
        assert bundles[0]["total"] == 9
        assert len(seen) == 9 and set(seen) == expected, sort
    sub_path, _ = page_through(client, "/v4.3.0/encounter/movement/?_count=2")
    assert sub_path == [f"movement-{num}" for num in movements]
    only_movements = client.get("/v4.3.0/Encounter?_id=movement-2,1&_summary=count").json()
    assert only_movements["total"] == 2
