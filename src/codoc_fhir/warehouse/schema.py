"""The warehouse schema, in one place.

Tables and columns follow the published Codoc data model (descended from Dr. Warehouse).
Tables and columns the API needs beyond that model are marked "added" and listed in
docs/SCHEMA.md. Every table the API writes carries `update_date` and `row_version`
(feeding meta.lastUpdated, meta.versionId and the ETag).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY columns; PostgreSQL gets BIGINT.
Key = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)
TOKEN_LENGTH = 255  # longer codes and systems stay in the kept elements, not in fhir_token


def _pk(name: str) -> Column:
    return Column(name, Key, primary_key=True, autoincrement=True)


def _audit() -> list[Column]:
    """Columns every table written by the API carries."""
    return [
        Column("upload_id", BigInteger),
        Column("update_date", Timestamp),
        Column("row_version", Integer, nullable=False, server_default="1"),  # added
        # added: the elements of the resource no column holds (JSON, see fhir/kept.py)
        Column("fhir_kept", Text),
    ]


# --- health system -------------------------------------------------------------------

hospital_instance = Table(
    "hospital_instance",
    metadata,
    _pk("id"),
    Column("code", String(30), nullable=False, unique=True),
    Column("name", String(400), nullable=False),
    *_audit(),
)

dwh_thesaurus_site = Table(
    "dwh_thesaurus_site",
    metadata,
    _pk("site_num"),
    Column("site_code", String(30), nullable=False, unique=True),
    Column("site_str", String(400), nullable=False),
    Column("instance_id", Key, ForeignKey("hospital_instance.id"), index=True),
    *_audit(),
)

dwh_thesaurus_department = Table(
    "dwh_thesaurus_department",
    metadata,
    _pk("department_num"),
    Column("department_code", String(30), nullable=False, unique=True),
    Column("department_str", String(400), nullable=False),
    Column("site_num", Key, ForeignKey("dwh_thesaurus_site.site_num"), index=True),
    Column("instance_id", Key, ForeignKey("hospital_instance.id"), index=True),
    Column("unit_count", Integer),
    Column("document_count", Integer),
    Column("movement_count", Integer),
    Column("patient_count", Integer),
    Column("department_master", Boolean),
    *_audit(),
)

dwh_thesaurus_unit = Table(
    "dwh_thesaurus_unit",
    metadata,
    _pk("unit_num"),
    Column("unit_code", String(50), nullable=False, unique=True),
    Column("unit_str", String(400), nullable=False),
    Column(
        "department_num",
        Key,
        ForeignKey("dwh_thesaurus_department.department_num"),
        nullable=False,
        index=True,
    ),
    Column("unit_start_date", Date),
    Column("unit_end_date", Date),
    Column("document_count", Integer),
    Column("movement_count", Integer),
    Column("patient_count", Integer),
    *_audit(),
)

# --- patients --------------------------------------------------------------------------

dwh_patient = Table(
    "dwh_patient",
    metadata,
    _pk("patient_num"),
    Column("lastname", String(120)),
    Column("maiden_name", String(120)),
    Column("firstname", String(120)),
    Column("birth_date", Timestamp),
    Column("birth_date_precision", String(5)),  # added: year|month|day, as sent
    Column("sex", String(2)),
    Column("nss", String(20)),
    Column("phone_number", String(50)),
    Column("email", String(500)),
    Column("residence_address", String(1000)),
    Column("residence_country", String(100)),
    Column("residence_city", String(200)),
    Column("zip_code", String(30)),
    Column("birth_country", String(100)),
    Column("birth_city", String(200)),
    Column("birth_zip_code", String(30)),
    Column("death_code", String(2)),
    Column("death_date", Timestamp),
    Column("is_merged", Boolean),
    Column("merged_into", Key, ForeignKey("dwh_patient.patient_num"), index=True),
    Column("max_date", Date),
    Column("id_patient_source", String(255)),
    Column("instance_id", String(40)),
    Column("patient_pid", String(300)),
    Column("patient_salt", String(300)),
    # added: managing organisation of any level (instance|site|department|unit, number)
    Column("managing_org_level", String(12)),
    Column("managing_org_num", Key),
    Column("telecom_json", Text),  # added: FHIR telecom[] as sent
    Column("address_json", Text),  # added: FHIR address[] as sent
    *_audit(),
    Index("ix_dwh_patient_lastname_firstname", "lastname", "firstname"),
    Index("ix_dwh_patient_birth_date", "birth_date"),
    Index("ix_dwh_patient_managing_org", "managing_org_level", "managing_org_num"),
)

dwh_patient_ipphist = Table(
    "dwh_patient_ipphist",
    metadata,
    _pk("ipphist_num"),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False, index=True),
    Column("hospital_patient_id", String(100), nullable=False),
    Column("origin_patient_id", String(255), nullable=False),  # the identifier system (widened)
    Column("master_patient_id", Boolean, nullable=False),
    Column("instance_ipp_id", String(40)),
    Column("ipp_origin_code", String(300)),
    Column("upload_id", BigInteger),
    Column("update_date", Timestamp),
    UniqueConstraint("origin_patient_id", "hospital_patient_id"),
    Index("ix_dwh_patient_ipphist_value", "hospital_patient_id"),
)

# --- stays and movements -----------------------------------------------------------

dwh_patient_stay = Table(
    "dwh_patient_stay",
    metadata,
    _pk("stay_num"),
    Column("encounter_num", String(300)),  # usual identifier (source visit number)
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column("entry_date", Timestamp),  # nullable: encounters sent without dates (0010)
    Column("out_date", Timestamp),
    Column("entry_mode", String(500)),
    Column("out_mode", String(500)),
    Column("type_dos", String(50)),
    Column("instance_stay_id", String(40)),
    Column("stay_origin_code", String(300)),
    Column("stay_pid", String(300)),
    Column("stay_salt", String(300)),
    Column("status", String(20)),  # added: FHIR Encounter.status
    Column("class_code", String(10)),  # added: IMP|AMB|EMER|HH
    Column("service_org_level", String(12)),  # added: serviceProvider level
    Column("service_org_num", Key),  # added: serviceProvider number
    *_audit(),
    Index("ix_dwh_patient_stay_patient_entry", "patient_num", "entry_date"),
    Index("ix_dwh_patient_stay_entry_date", "entry_date"),
    Index("ix_dwh_patient_stay_encounter_num", "encounter_num"),
    Index("ix_dwh_patient_stay_service_org", "service_org_level", "service_org_num"),
)

dwh_patient_mvt = Table(
    "dwh_patient_mvt",
    metadata,
    _pk("mvt_num"),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column("stay_num", Key, ForeignKey("dwh_patient_stay.stay_num"), nullable=False, index=True),
    Column("entry_date", Timestamp),  # nullable: encounters sent without dates (0010)
    Column("out_date", Timestamp),
    Column("mvt_entry_mode", String(500)),
    Column("mvt_exit_mode", String(500)),
    Column("type_mvt", String(30)),
    Column("mvt_order", Integer),
    Column(
        "department_num", Key, ForeignKey("dwh_thesaurus_department.department_num"), index=True
    ),
    Column("unit_num", Key, ForeignKey("dwh_thesaurus_unit.unit_num"), index=True),
    Column("instance_mvt_id", String(40)),
    Column("mvt_origin_code", String(300)),
    Column("id_mvt_source", String(300)),
    Column("mvt_pid", String(300)),
    Column("mvt_salt", String(300)),
    Column("status", String(20)),  # added
    Column("class_code", String(10)),  # added
    Column("service_org_level", String(12)),  # added
    Column("service_org_num", Key),  # added
    *_audit(),
    Index("ix_dwh_patient_mvt_patient_entry", "patient_num", "entry_date"),
    Index("ix_dwh_patient_mvt_id_source", "id_mvt_source"),
    Index("ix_dwh_patient_mvt_service_org", "service_org_level", "service_org_num"),
)

# --- documents -----------------------------------------------------------------------

dwh_document = Table(
    "dwh_document",
    metadata,
    _pk("document_num"),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column("title", String(400)),
    Column("document_date", Timestamp, nullable=False),
    Column("document_type", String(100)),
    Column("author", String(200)),  # people who wrote it, "; "-joined displays
    Column("displayed_text", Text, nullable=False),
    Column("stay_num", Key, ForeignKey("dwh_patient_stay.stay_num"), index=True),
    Column(
        "department_num", Key, ForeignKey("dwh_thesaurus_department.department_num"), index=True
    ),
    Column("unit_num", Key, ForeignKey("dwh_thesaurus_unit.unit_num"), index=True),
    Column("instance_document_id", String(40)),
    Column("document_origin_code", String(60)),
    Column("id_doc_source", String(300)),
    Column("document_pid", String(300)),
    Column("document_salt", String(300)),
    Column("status", String(30)),  # added: current|superseded|entered-in-error
    Column("content_type", String(100)),  # added: attachment.contentType
    Column("content_bytes", LargeBinary),  # added: attachment bytes, exactly as sent
    *_audit(),
    Index("ix_dwh_document_patient_date", "patient_num", "document_date"),
    Index("ix_dwh_document_date", "document_date"),
    Index("ix_dwh_document_id_source", "id_doc_source"),
)

dwh_document_author = Table(  # added: author[] entries (people and organisations)
    "dwh_document_author",
    metadata,
    _pk("document_author_num"),
    Column(
        "document_num",
        Key,
        ForeignKey("dwh_document.document_num", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("author_order", Integer, nullable=False),
    Column("author_display", String(400)),
    Column("org_level", String(12)),
    Column("org_num", Key),
    Index("ix_dwh_document_author_org", "org_level", "org_num"),
)

dwh_text = Table(  # added (as in Dr. Warehouse): the plain text of a document, for NLP
    "dwh_text",
    metadata,
    Column(
        "document_num",
        Key,
        ForeignKey("dwh_document.document_num", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False, index=True),
    Column("text", Text, nullable=False),
    Column("upload_id", BigInteger),
    Column("update_date", Timestamp),
)

# --- vocabularies ----------------------------------------------------------------------

dwh_thesaurus = Table(  # added: one row per thesaurus (CodeSystem)
    "dwh_thesaurus",
    metadata,
    _pk("thesaurus_num"),
    Column("thesaurus_code", String(30), nullable=False, unique=True),
    Column("name", String(400)),
    Column("label", String(2000), nullable=False),
    Column("description", String(4000)),
    *_audit(),
)

dwh_thesaurus_data = Table(
    "dwh_thesaurus_data",
    metadata,
    _pk("thesaurus_data_num"),
    Column(
        "thesaurus_code",
        String(30),
        ForeignKey("dwh_thesaurus.thesaurus_code"),
        nullable=False,
    ),
    Column("concept_code", String(100), nullable=False),
    Column("concept_str", String(2000), nullable=False),
    Column("description", String(4000)),
    Column("measuring_unit", String(50)),
    Column("value_type", String(50), nullable=False, server_default="present"),
    Column("list_values", String(4000)),
    Column("thesaurus_parent_num", Key, ForeignKey("dwh_thesaurus_data.thesaurus_data_num")),
    Column("count_data_used", Integer),
    Column("designation_json", Text),  # added: the concept's designation[] (synonyms) as sent
    Column("designation_text", String(4000)),  # added: their values, one a line (searched)
    *_audit(),
    UniqueConstraint("thesaurus_code", "concept_code"),
)

# --- coded facts -------------------------------------------------------------------------

dwh_data = Table(
    "dwh_data",
    metadata,
    _pk("data_num"),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column(
        "thesaurus_data_num",
        Key,
        ForeignKey("dwh_thesaurus_data.thesaurus_data_num"),
        nullable=False,
    ),
    Column("thesaurus_code", String(40), nullable=False),
    Column("document_date", Timestamp, nullable=False),
    Column("start_date", Timestamp, nullable=False),
    Column("end_date", Timestamp),
    Column("val_numeric", Float),
    Column("operator", String(5)),
    Column("val_text", String(10000)),
    Column("lower_bound", Float),
    Column("upper_bound", Float),
    Column("instance_data_id", String(40)),
    Column("document_origin_code", String(60)),
    Column("id_data_source", String(300)),
    Column("stay_num", Key, ForeignKey("dwh_patient_stay.stay_num"), index=True),
    Column(
        "department_num", Key, ForeignKey("dwh_thesaurus_department.department_num"), index=True
    ),
    Column("document_num", Key, ForeignKey("dwh_document.document_num"), index=True),
    Column("data_pid", String(300)),
    Column("data_salt", String(300)),
    # drug columns of the published model
    Column("frequency", Integer),
    Column("period", Integer),
    Column("period_unit", String(25)),
    Column("route", String(50)),
    Column("data_status", String(20)),
    Column("data_unit", String(25)),
    Column("daily_details", String(400)),
    Column("drug_condition", Boolean),
    Column("drug_condition_reason", String(4000)),
    # added
    Column("unit_num", Key, ForeignKey("dwh_thesaurus_unit.unit_num"), index=True),
    Column("value_kind", String(12)),  # quantity|string|codeable, as sent
    Column("unit_system", String(200)),  # valueQuantity.system (UCUM)
    Column("unit_code", String(50)),  # valueQuantity.code
    Column("value_code_system", String(200)),  # valueCodeableConcept.coding[0]
    Column("value_code", String(100)),
    Column("validity_start", Timestamp),  # MedicationRequest validityPeriod
    Column("validity_end", Timestamp),
    Column("issued_date", Timestamp),  # DiagnosticReport.issued
    Column("extra_json", Text),  # FHIR elements with no warehouse column, as sent
    *_audit(),
    Index("ix_dwh_data_patient_thesaurus_start", "patient_num", "thesaurus_code", "start_date"),
    Index("ix_dwh_data_concept_start", "thesaurus_data_num", "start_date"),
    Index("ix_dwh_data_thesaurus_start", "thesaurus_code", "start_date"),
    Index("ix_dwh_data_id_source", "id_data_source"),
)

dwh_enrsem = Table(  # added (as in Dr. Warehouse): NLP concepts found in documents
    "dwh_enrsem",
    metadata,
    _pk("enrsem_num"),
    Column("document_num", Key, ForeignKey("dwh_document.document_num"), nullable=False),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column(
        "thesaurus_data_num",
        Key,
        ForeignKey("dwh_thesaurus_data.thesaurus_data_num"),
        nullable=False,
    ),
    Column("thesaurus_code", String(40), nullable=False),
    Column("concept_str_found", String(2000), nullable=False),
    Column("certainty", Integer),  # 1 affirmed, -1 negated
    Column("context", String(30)),  # patient_text | family_text
    Column("hypothesis", Boolean),
    Column("count_concept", Integer),
    Column("count_concept_str_found", Integer),
    Column("tfidf_code_document", Float),
    Column("semantic_type", String(100)),
    Column("phenotype", Boolean),
    Column("document_date", Timestamp),
    Column("id_enrsem_source", String(300)),
    Column("extracted", Boolean),  # added: stored by the built-in extraction (not a client)
    *_audit(),
    Index("ix_dwh_enrsem_patient_date", "patient_num", "document_date"),
    Index("ix_dwh_enrsem_document", "document_num"),
    Index("ix_dwh_enrsem_concept", "thesaurus_data_num", "document_date"),
    Index("ix_dwh_enrsem_id_source", "id_enrsem_source"),
)

dwh_enrsem_extraction = Table(  # added: which text each document was last extracted from
    "dwh_enrsem_extraction",
    metadata,
    Column(
        "document_num",
        Key,
        ForeignKey("dwh_document.document_num", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("thesaurus_code", String(40), primary_key=True),
    Column("text_date", Timestamp),  # dwh_text.update_date of the text read
    Column("extract_date", Timestamp, nullable=False),
)

dwh_cohort = Table(  # added (as in Dr. Warehouse): a researcher's cohort of patients (Group)
    "dwh_cohort",
    metadata,
    _pk("cohort_num"),
    Column("name", String(400), nullable=False),
    Column("id_cohort_source", String(300), index=True),
    *_audit(),
)

dwh_cohort_patient = Table(  # added: the members of a cohort, in member[] order
    "dwh_cohort_patient",
    metadata,
    Column(
        "cohort_num",
        Key,
        ForeignKey("dwh_cohort.cohort_num", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("member_order", Integer, primary_key=True),
    Column(
        "patient_num",
        Key,
        ForeignKey("dwh_patient.patient_num", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("period_start", Timestamp),
    Column("period_end", Timestamp),
)

dwh_patient_data = Table(  # added: patient traits (weight, height, blood group, allergy)
    "dwh_patient_data",
    metadata,
    _pk("patient_data_num"),
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num"), nullable=False),
    Column("stay_num", Key, ForeignKey("dwh_patient_stay.stay_num"), index=True),
    Column("code_system", String(200)),
    Column("code", String(100), nullable=False),
    Column("code_display", String(2000)),
    Column("status", String(20)),
    Column("effective_date", Timestamp, nullable=False),
    Column("val_numeric", Float),
    Column("operator", String(5)),
    Column("val_text", String(10000)),
    Column("data_unit", String(25)),
    Column("unit_system", String(200)),
    Column("unit_code", String(50)),
    Column("value_kind", String(12)),
    Column("value_code_system", String(200)),
    Column("value_code", String(100)),
    Column("lower_bound", Float),
    Column("upper_bound", Float),
    Column("id_data_source", String(300)),
    Column("extra_json", Text),
    *_audit(),
    Index("ix_dwh_patient_data_patient_date", "patient_num", "effective_date"),
    Index("ix_dwh_patient_data_code_date", "code", "effective_date"),
    Index("ix_dwh_patient_data_id_source", "id_data_source"),
)

# --- operations ------------------------------------------------------------------------

fhir_access_log = Table(  # added: one row per API request, never bodies nor tokens
    "fhir_access_log",
    metadata,
    _pk("access_log_num"),
    Column("user_id", String(200), nullable=False),
    Column("ip_address", String(64)),
    Column("method", String(10), nullable=False),
    Column("url", String(4000), nullable=False),
    Column("content_type", String(200)),
    Column("accept", String(200)),
    Column("user_agent", String(400)),
    Column("status_code", Integer, nullable=False),
    Column("start_date", Timestamp, nullable=False),
    Column("end_date", Timestamp, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Index("ix_fhir_access_log_start", "start_date"),
)

fhir_rate_limit = Table(  # added: request counters shared by every worker process
    "fhir_rate_limit",
    metadata,
    Column("bucket_key", String(300), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("request_count", Integer, nullable=False),
)

fhir_server_secret = Table(  # added: random secrets every worker shares (cursor key)
    "fhir_server_secret",
    metadata,
    Column("secret_name", String(50), primary_key=True),
    Column("secret_value", String(200), nullable=False),
    Column("create_date", Timestamp, nullable=False),
)

# --- bulk data ---------------------------------------------------------------------------

fhir_import_checkpoint = Table(  # added: how far `codoc-fhir import` got in each file
    "fhir_import_checkpoint",
    metadata,
    Column("import_key", String(300), primary_key=True),  # a hash of the file's content
    Column("file_path", String(2000), nullable=False),
    Column("lines_done", BigInteger, nullable=False, server_default="0"),
    Column("resources_created", BigInteger, nullable=False, server_default="0"),
    Column("resources_skipped", BigInteger, nullable=False, server_default="0"),
    Column("resources_failed", BigInteger, nullable=False, server_default="0"),
    Column("status", String(20), nullable=False),  # running | partial (failures) | done
    Column("update_date", Timestamp),
)

fhir_import_id_map = Table(  # added: ids of imported resources in the source -> ours
    "fhir_import_id_map",
    metadata,
    Column("source_type", String(40), primary_key=True),
    Column("source_id", String(300), primary_key=True),
    Column("target_id", String(64), nullable=False),
    Column("update_date", Timestamp),
    Column("content_hash", String(64)),  # of the resource as written: a changed one is updated
)

fhir_export_job = Table(  # added: Bulk Data $export jobs, visible to every worker
    "fhir_export_job",
    metadata,
    _pk("export_num"),
    Column("status", String(20), nullable=False),  # accepted | in-progress | complete | error
    Column("request_url", String(4000), nullable=False),
    Column("resource_types", Text),  # every type served: ~140 names (0008_generic)
    Column("since_date", Timestamp),
    Column("patient_restriction", Key),
    Column("owner", String(200)),  # token subject or "anonymous"
    Column("output_json", Text),  # the manifest's output[] once complete
    Column("error_text", String(4000)),
    Column("start_date", Timestamp, nullable=False),
    Column("end_date", Timestamp),
)

# --- versions ----------------------------------------------------------------------------

fhir_token = Table(  # added: codes and identifiers inside kept elements, for token search
    "fhir_token",
    metadata,
    Column("table_name", String(64), nullable=False),
    Column("row_num", Key, nullable=False),
    Column("element", String(64), nullable=False),  # the top-level element holding the code
    Column("system", String(TOKEN_LENGTH)),
    Column("code", String(TOKEN_LENGTH), nullable=False),
    Index("ix_fhir_token_code", "table_name", "element", "code"),
    Index("ix_fhir_token_row", "table_name", "row_num"),
)

dwh_resource_history = Table(  # added: every version of every resource written by the API
    "dwh_resource_history",
    metadata,
    _pk("history_num"),
    Column("fhir_type", String(40), nullable=False),
    Column("fhir_id", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),  # the warehouse table and its key
    Column("table_key", Key, nullable=False),
    Column("patient_num", Key),  # whose resource it is (patient-scoped tokens)
    Column("version_id", Integer, nullable=False),
    Column("method", String(10), nullable=False),  # POST | PUT | PATCH | DELETE
    Column("history_date", Timestamp, nullable=False),
    Column("resource_json", Text),  # the resource as answered; null for a delete
    UniqueConstraint("fhir_type", "fhir_id", "version_id"),
    Index("ix_dwh_resource_history_date", "history_date"),
    Index("ix_dwh_resource_history_type_date", "fhir_type", "history_date"),
    Index("ix_dwh_resource_history_patient", "patient_num", "history_date"),
)


# --- every other R4B resource type (CONTRACT section 9) ------------------------------------

fhir_resource = Table(  # added: a resource of a type without warehouse tables, kept whole
    "fhir_resource",
    metadata,
    _pk("resource_num"),
    Column("resource_type", String(64), nullable=False),
    # The patient whose compartment holds the resource (a patient stored here): a patient
    # cannot be deleted while resources of its compartment remain.
    Column("patient_num", Key, ForeignKey("dwh_patient.patient_num")),
    Column("resource_json", Text, nullable=False),  # the body as sent, without id and meta
    *_audit(),
    Index("ix_fhir_resource_type_num", "resource_type", "resource_num"),  # a type's pages
    Index("ix_fhir_resource_type_updated", "resource_type", "update_date"),
    Index("ix_fhir_resource_patient_type", "patient_num", "resource_type"),
)

fhir_search_value = Table(  # added: one row per search value extracted from a fhir_resource
    "fhir_search_value",
    metadata,
    _pk("search_value_num"),
    Column(
        "resource_num",
        Key,
        ForeignKey("fhir_resource.resource_num", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("resource_type", String(64), nullable=False),
    Column("param_name", String(100), nullable=False),
    Column("token_system", String(500)),  # token: system (or None) and code / value
    Column("token_code", String(500)),
    Column("string_value", String(500)),  # string: folded (lower case, no accents)
    Column("string_exact", String(500)),  # string: as sent, for :exact
    Column("date_start", Timestamp),  # date: the value's range, both ends included
    Column("date_end", Timestamp),  # (None: a period still open)
    Column("number_value", Float),  # number and quantity
    Column("quantity_system", String(500)),
    Column("quantity_code", String(500)),  # the unit code, else the unit text
    Column("ref_type", String(64)),  # reference: the type and id it names (`Type/id`)
    Column("ref_id", String(500)),  # (the whole reference when it is not `Type/id`)
    Column("ref_num", Key),  # the id as a number when it is one (delete blocking)
    Column("uri_value", String(500)),
    Index("ix_fhir_search_value_token", "resource_type", "param_name", "token_code"),
    Index("ix_fhir_search_value_string", "resource_type", "param_name", "string_value"),
    Index("ix_fhir_search_value_date", "resource_type", "param_name", "date_start"),
    Index("ix_fhir_search_value_number", "resource_type", "param_name", "number_value"),
    Index("ix_fhir_search_value_reference", "resource_type", "param_name", "ref_id"),
    Index("ix_fhir_search_value_uri", "resource_type", "param_name", "uri_value"),
    Index("ix_fhir_search_value_referrer", "ref_type", "ref_num"),
)


def _never_reuse_keys() -> None:
    """SQLite reuses max(rowid)+1 after a delete unless the table says AUTOINCREMENT; ids
    are never reused (a deleted resource answers 410), so every table with a server-assigned
    integer key says it. PostgreSQL identities never go back anyway."""
    for table in metadata.tables.values():
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and keys[0].autoincrement is True:
            table.dialect_options["sqlite"]["autoincrement"] = True


_never_reuse_keys()

# Objects the migrations create outside this metadata, one engine each: the SQLite FTS5
# table of dwh_text (and its shadow tables) and the PostgreSQL full-text GIN indexes.
ENGINE_SPECIFIC_PREFIX = "dwh_text_fts"


def declared_here(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name: compare everything but the engine-specific objects."""
    return not (name or "").startswith(ENGINE_SPECIFIC_PREFIX)
