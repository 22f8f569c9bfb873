"""A deterministic synthetic warehouse for the benchmark: rows as plain tuples.

Everything is drawn from one `random.Random(seed)`, so the same seed and sizes give the same
rows on SQLite and PostgreSQL. Primary keys are assigned here (1..N) so that rows can point
at each other without reading anything back. Sizes: `patients` patients (one master IPP,
a second IPP for one in ten), one to five stays each, and `facts` coded facts spread over the
patients (a few heavy users, many light ones) and inside their stays: Procedure acts
(thesaurus Acte, CCAM-like codes), lab results (Biologie, LOINC-like codes with units and
reference ranges) and prescriptions (Prescription, ATC-like codes).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

LOADED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FIRST_DAY = datetime(2015, 1, 1, tzinfo=UTC)
DAYS = 11 * 365  # stays from 2015 to 2025
UCUM = "http://unitsofmeasure.org"

LASTNAMES = "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent"
FIRSTNAMES = "Jean Marie Pierre Anne Louis Claire Paul Julie Michel Sophie Luc Emma Hugo Lea"
CITIES = ("Paris", "Lyon", "Marseille", "Lille", "Rennes", "Nantes", "Toulouse", "Bordeaux")
LAB_TESTS = (  # label, unit, low, high
    ("Creatinine", "umol/L", 45.0, 110.0),
    ("Hemoglobin", "g/dL", 12.0, 17.0),
    ("Potassium", "mmol/L", 3.5, 5.0),
    ("Sodium", "mmol/L", 135.0, 145.0),
    ("Glucose", "mmol/L", 3.9, 6.1),
    ("C-reactive protein", "mg/L", 0.0, 5.0),
    ("Platelets", "10*9/L", 150.0, 400.0),
    ("Leukocytes", "10*9/L", 4.0, 10.0),
)
ROUTES = ("oral", "intravenous", "subcutaneous", "intramuscular")

# (thesaurus_code, share of the facts, number of concepts)
THESAURI = (("Acte", 0.5, 2000), ("Biologie", 0.35, 400), ("Prescription", 0.15, 1200))


@dataclass
class Sizes:
    patients: int
    facts: int
    sites: int = 3
    departments: int = 30
    units: int = 120


@dataclass
class Concept:
    num: int
    thesaurus: str
    code: str
    label: str
    unit: str | None = None
    low: float | None = None
    high: float | None = None


@dataclass
class Warehouse:
    """The generated rows, table by table (facts are generated lazily: there are many)."""

    sizes: Sizes
    seed: int
    concepts: dict[str, list[Concept]] = field(default_factory=dict)
    stays: list[list[tuple[int, datetime, int, int, int]]] = field(default_factory=list)


def _ccam(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_uppercase, k=4)) + f"{rng.randrange(1000):03d}"


def _loinc(rng: random.Random) -> str:
    body = rng.randrange(1000, 99999)
    return f"{body}-{sum(int(d) for d in str(body)) % 10}"


def _atc(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    return (
        f"{rng.choice('ABCDGHJLMNPRSV')}{rng.randrange(1, 20):02d}"
        f"{rng.choice(letters)}{rng.choice(letters)}{rng.randrange(1, 99):02d}"
    )


def make_concepts(rng: random.Random) -> dict[str, list[Concept]]:
    """The concepts of each thesaurus, numbered 1..N across thesauri, codes unique."""
    makers = {"Acte": _ccam, "Biologie": _loinc, "Prescription": _atc}
    found: dict[str, list[Concept]] = {}
    num = 0
    for thesaurus, _share, count in THESAURI:
        codes: set[str] = set()
        found[thesaurus] = []
        while len(codes) < count:
            code = makers[thesaurus](rng)
            if code in codes:
                continue
            codes.add(code)
            num += 1
            found[thesaurus].append(_concept(rng, num, thesaurus, code))
    return found


def _concept(rng: random.Random, num: int, thesaurus: str, code: str) -> Concept:
    if thesaurus == "Biologie":
        label, unit, low, high = rng.choice(LAB_TESTS)
        return Concept(num, thesaurus, code, f"{label} ({code})", unit, low, high)
    if thesaurus == "Prescription":
        return Concept(num, thesaurus, code, f"Drug {code}", "mg")
    return Concept(num, thesaurus, code, f"Act {code}")


def organisation_rows(sizes: Sizes) -> dict[str, list[tuple[Any, ...]]]:
    """hospital_instance, sites, departments and units (their ids are 1..N per level)."""
    sites = [(n, f"SITE{n}", f"Site {n}", 1, LOADED_AT, 1) for n in range(1, sizes.sites + 1)]
    departments = [
        (n, f"DEP{n:03d}", f"Department {n}", 1 + n % sizes.sites, 1, LOADED_AT, 1)
        for n in range(1, sizes.departments + 1)
    ]
    units = [
        (n, f"UNIT{n:04d}", f"Unit {n}", 1 + n % sizes.departments, LOADED_AT, 1)
        for n in range(1, sizes.units + 1)
    ]
    return {
        "hospital_instance": [(1, "INST1", "Hospital group", LOADED_AT, 1)],
        "dwh_thesaurus_site": sites,
        "dwh_thesaurus_department": departments,
        "dwh_thesaurus_unit": units,
    }


ORG_COLUMNS = {
    "hospital_instance": ("id", "code", "name", "update_date", "row_version"),
    "dwh_thesaurus_site": (
        "site_num", "site_code", "site_str", "instance_id", "update_date", "row_version"
    ),
    "dwh_thesaurus_department": (
        "department_num", "department_code", "department_str", "site_num", "instance_id",
        "update_date", "row_version",
    ),
    "dwh_thesaurus_unit": (
        "unit_num", "unit_code", "unit_str", "department_num", "update_date", "row_version"
    ),
}  # fmt: skip

THESAURUS_COLUMNS = ("thesaurus_num", "thesaurus_code", "name", "label", "update_date")
CONCEPT_COLUMNS = (
    "thesaurus_data_num", "thesaurus_code", "concept_code", "concept_str", "measuring_unit",
    "value_type", "update_date", "row_version",
)  # fmt: skip


def thesaurus_rows(concepts: dict[str, list[Concept]]) -> list[tuple[Any, ...]]:
    return [
        (n, code, code, f"Thesaurus {code}", LOADED_AT) for n, code in enumerate(concepts, start=1)
    ]


def concept_rows(concepts: dict[str, list[Concept]]) -> list[tuple[Any, ...]]:
    return [
        (c.num, c.thesaurus, c.code, c.label, c.unit,
         "numeric" if c.thesaurus == "Biologie" else "present", LOADED_AT, 1)
        for group in concepts.values()
        for c in group
    ]  # fmt: skip


PATIENT_COLUMNS = (
    "patient_num", "lastname", "firstname", "birth_date", "birth_date_precision", "sex",
    "residence_city", "zip_code", "update_date", "row_version",
)  # fmt: skip
IPP_COLUMNS = (
    "ipphist_num", "patient_num", "hospital_patient_id", "origin_patient_id",
    "master_patient_id", "update_date",
)  # fmt: skip
STAY_COLUMNS = (
    "stay_num", "encounter_num", "patient_num", "entry_date", "out_date", "type_dos",
    "status", "class_code", "service_org_level", "service_org_num", "update_date", "row_version",
)  # fmt: skip


def patient_rows(rng: random.Random, sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    lastnames, firstnames = LASTNAMES.split(), FIRSTNAMES.split()
    for num in range(1, sizes.patients + 1):
        birth = datetime(1930, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(33000))
        city = rng.choice(CITIES)
        yield (
            num, rng.choice(lastnames), rng.choice(firstnames), birth, "day",
            rng.choice("FM"), city, f"{rng.randrange(1000, 95999):05d}", LOADED_AT, 1,
        )  # fmt: skip


def ipp_rows(rng: random.Random, sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    """One master IPP per patient, a second (non-master) one from another system for 1 in 10."""
    num = 0
    for patient in range(1, sizes.patients + 1):
        num += 1
        yield (num, patient, f"{8000000000 + patient}", "HIS", True, LOADED_AT)
        if rng.random() < 0.1:
            num += 1
            yield (num, patient, f"L{patient:08d}", "LAB", False, LOADED_AT)


def stay_rows(rng: random.Random, warehouse: Warehouse) -> Iterator[tuple[Any, ...]]:
    """One to five stays per patient; keeps (num, entry, days, department, unit) for facts."""
    sizes = warehouse.sizes
    num = 0
    warehouse.stays = []
    for patient in range(1, sizes.patients + 1):
        mine = []
        for _ in range(rng.randint(1, 5)):
            num += 1
            entry = FIRST_DAY + timedelta(days=rng.randrange(DAYS), hours=rng.randrange(24))
            days = rng.randrange(1, 10)
            unit = rng.randrange(1, sizes.units + 1)
            department = 1 + unit % sizes.departments
            mine.append((num, entry, days, department, unit))
            yield (
                num, f"V{num:09d}", patient, entry, entry + timedelta(days=days), "H",
                "finished", "IMP", "department", department, LOADED_AT, 1,
            )  # fmt: skip
        warehouse.stays.append(mine)


FACT_COLUMNS = (
    "data_num", "patient_num", "thesaurus_data_num", "thesaurus_code", "document_date",
    "start_date", "end_date", "val_numeric", "lower_bound", "upper_bound", "stay_num",
    "department_num", "unit_num", "id_data_source", "data_unit", "value_kind", "unit_system",
    "unit_code", "route", "frequency", "period", "period_unit", "data_status",
    "update_date", "row_version",
)  # fmt: skip


def facts_per_patient(rng: random.Random, sizes: Sizes) -> list[int]:
    """How many facts each patient has: exactly `sizes.facts` in all, skewed."""
    weights = [rng.expovariate(1.0) for _ in range(sizes.patients)]
    total = sum(weights)
    counts = [int(sizes.facts * w / total) for w in weights]
    for index in range(sizes.facts - sum(counts)):
        counts[index % sizes.patients] += 1
    return counts


def fact_rows(rng: random.Random, warehouse: Warehouse) -> Iterator[tuple[Any, ...]]:
    """The coded facts, patient by patient, each inside one of the patient's stays."""
    kinds = [name for name, _share, _count in THESAURI]
    shares = [share for _name, share, _count in THESAURI]
    # Zipf-like code popularity: a few codes are very common, most are rare.
    popularity = {name: _cumulative(len(warehouse.concepts[name])) for name in kinds}
    num = 0
    counts = facts_per_patient(rng, warehouse.sizes)
    for patient, count in enumerate(counts, start=1):
        stays = warehouse.stays[patient - 1]
        chosen = rng.choices(kinds, shares, k=count)
        for kind in chosen:
            num += 1
            stay, entry, days, department, unit = rng.choice(stays)
            start = entry + timedelta(minutes=rng.randrange(days * 1440))
            concept = rng.choices(warehouse.concepts[kind], cum_weights=popularity[kind])[0]
            yield _fact(rng, num, patient, concept, start, stay, department, unit)


def _cumulative(count: int) -> list[float]:
    weights = list(accumulate(1.0 / (rank + 5) for rank in range(count)))
    return weights


def _fact(
    rng: random.Random,
    num: int,
    patient: int,
    concept: Concept,
    start: datetime,
    stay: int,
    department: int,
    unit: int,
) -> tuple[Any, ...]:
    value = low = high = data_unit = kind = system = unit_code = None
    route = frequency = period = period_unit = status = end = None
    if concept.thesaurus == "Biologie":
        assert concept.low is not None and concept.high is not None
        low, high, data_unit = concept.low, concept.high, concept.unit
        value = round(rng.uniform(low * 0.7, high * 1.3), 1)
        kind, system, unit_code = "quantity", UCUM, concept.unit
    elif concept.thesaurus == "Prescription":
        value, data_unit = float(rng.choice((5, 10, 20, 50, 100, 500))), "mg"
        route, frequency, period, period_unit = rng.choice(ROUTES), rng.randint(1, 3), 1, "d"
        status, end = "active", start + timedelta(days=rng.randrange(1, 15))
    return (
        num, patient, concept.num, concept.thesaurus, start, start, end, value, low, high,
        stay, department, unit if rng.random() < 0.5 else None, f"SRC{num:09d}", data_unit,
        kind, system, unit_code, route, frequency, period, period_unit, status, LOADED_AT, 1,
    )  # fmt: skip
