"""research warehouse: built-in phenotype extraction, full-text search of dwh_text

PostgreSQL: the unaccent extension, text search configurations codoc_french and
codoc_english (unaccent, then the language's stemmer), and per language a stored generated
tsvector column of dwh_text with its GIN index (stored, so that rechecks and phrase
searches read it instead of parsing the text again). SQLite: the FTS5 table dwh_text_fts
over dwh_text (external content) and the triggers keeping it in step. A later batch
migration of dwh_text on SQLite (which copies the table) must create the triggers again.

Revision ID: 0006_research
Revises: 0003
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_research"
down_revision = "0005_history"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


LANGUAGES = {"french": "french_stem", "english": "english_stem"}
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE dwh_text_fts USING fts5(text, content='dwh_text', "
    "content_rowid='document_num', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER dwh_text_fts_insert AFTER INSERT ON dwh_text BEGIN "
    "INSERT INTO dwh_text_fts(rowid, text) VALUES (new.document_num, new.text); END",
    "CREATE TRIGGER dwh_text_fts_delete AFTER DELETE ON dwh_text BEGIN "
    "INSERT INTO dwh_text_fts(dwh_text_fts, rowid, text) "
    "VALUES ('delete', old.document_num, old.text); END",
    "CREATE TRIGGER dwh_text_fts_update AFTER UPDATE ON dwh_text BEGIN "
    "INSERT INTO dwh_text_fts(dwh_text_fts, rowid, text) "
    "VALUES ('delete', old.document_num, old.text); "
    "INSERT INTO dwh_text_fts(rowid, text) VALUES (new.document_num, new.text); END",
    "INSERT INTO dwh_text_fts(dwh_text_fts) VALUES ('rebuild')",
]


def _full_text_upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    for language, stemmer in LANGUAGES.items():
        config = f"codoc_{language}"
        op.execute(f"CREATE TEXT SEARCH CONFIGURATION {config} (COPY = pg_catalog.{language})")
        op.execute(
            f"ALTER TEXT SEARCH CONFIGURATION {config} "
            f"ALTER MAPPING FOR hword, hword_part, word WITH unaccent, {stemmer}"
        )
        op.execute(
            f"ALTER TABLE dwh_text ADD COLUMN dwh_text_fts_{language} tsvector GENERATED ALWAYS "
            f"AS (to_tsvector('{config}'::regconfig, text)) STORED"
        )
        op.execute(
            f"CREATE INDEX dwh_text_fts_{language}_index ON dwh_text "
            f"USING gin (dwh_text_fts_{language})"
        )


def _full_text_downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS dwh_text_fts_{name}")
        op.execute("DROP TABLE IF EXISTS dwh_text_fts")
        return
    for language in LANGUAGES:
        op.execute(f"ALTER TABLE dwh_text DROP COLUMN IF EXISTS dwh_text_fts_{language}")
        op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS codoc_{language}")


def _cohort_tables() -> None:
    op.create_table(
        "dwh_cohort",
        sa.Column("cohort_num", KEY, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("id_cohort_source", sa.String(length=300), nullable=True),
        sa.Column("upload_id", sa.BigInteger(), nullable=True),
        sa.Column("update_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("cohort_num"),
        sqlite_autoincrement=True,  # a deleted Group's id is never given again (0005)
    )
    op.create_index(
        op.f("ix_dwh_cohort_id_cohort_source"), "dwh_cohort", ["id_cohort_source"], unique=False
    )
    op.create_table(
        "dwh_cohort_patient",
        sa.Column("cohort_num", KEY, nullable=False),
        sa.Column("member_order", sa.Integer(), nullable=False),
        sa.Column("patient_num", KEY, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["cohort_num"], ["dwh_cohort.cohort_num"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_num"], ["dwh_patient.patient_num"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cohort_num", "member_order"),
    )
    op.create_index(
        op.f("ix_dwh_cohort_patient_patient_num"),
        "dwh_cohort_patient",
        ["patient_num"],
        unique=False,
    )


def upgrade() -> None:
    _full_text_upgrade()
    _cohort_tables()
    with op.batch_alter_table("dwh_enrsem", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extracted", sa.Boolean(), nullable=True))
    op.create_table(
        "dwh_enrsem_extraction",
        sa.Column("document_num", KEY, nullable=False),
        sa.Column("thesaurus_code", sa.String(length=40), nullable=False),
        sa.Column("text_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extract_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_num"], ["dwh_document.document_num"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("document_num", "thesaurus_code"),
    )


def downgrade() -> None:
    op.drop_table("dwh_cohort_patient")
    op.drop_table("dwh_cohort")
    _full_text_downgrade()
    op.drop_table("dwh_enrsem_extraction")
    with op.batch_alter_table("dwh_enrsem", schema=None) as batch_op:
        batch_op.drop_column("extracted")
