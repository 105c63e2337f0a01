"""Hostile result files against a real Postgres: exactly the records, or a failure with nothing committed.

Each case is one the old loader got wrong silently (issue 15): ``\\.`` alone on a line, a truncated
gzip part, a part starting with a blank line, backslash-escaped quotes, empty string vs NULL,
embedded quotes/CR/newlines, a BOM, header-only parts, schema drift. Files are written the way the
sensor saves them (``measure_results`` into a per-execution folder, manifest last) and loaded by
``load_execution`` / ``AmcToPostgresOperator`` exactly as in production.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from amc_connections import PG_DSN
from psycopg import sql

from airflow_provider_amc.result_reader import CsvDialect
from airflow_provider_amc.results import MANIFEST_NAME, execution_folder, measure_results, object_storage_sink
from airflow_provider_amc.transfers.amc_to_postgres import NewerExecutionLoaded, saved_result
from airflow_provider_amc.transfers.postgres_load import ResultLoadError, load_execution
from airflow_provider_amc.transfers.postgres_types import TableColumn

pytestmark = pytest.mark.integration
TEXT = [TableColumn("term", "text")]
INSTANCE = "amcdemo0001"
TWO = [TableColumn("term", "text"), TableColumn("n", "bigint")]


def query(statement: sql.Composable | str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_DSN, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_exact_{uuid.uuid4().hex[:12]}"
    yield name
    query(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def load(
    table: str,
    parts: Sequence[tuple[str, bytes]],
    columns: Sequence[TableColumn] = TEXT,
    execution_id: str = "exec-1",
    instance_id: str = INSTANCE,
    **kwargs: Any,
) -> int:
    """Load ``parts`` (each cut into 3-byte chunks: every boundary is crossed) into ``table``."""
    chunked = [(name, [data[i : i + 3] for i in range(0, len(data), 3)]) for name, data in parts]
    with psycopg.connect(PG_DSN) as conn:
        return load_execution(
            conn, (table,), columns, execution_id, chunked, instance_id=instance_id, **kwargs
        )


def rows_of(table: str, *columns: str) -> list[tuple[Any, ...]]:
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return query(sql.SQL("SELECT {} FROM {} ORDER BY ctid").format(names, sql.Identifier(table)))


def test_backslash_dot_alone_is_a_value_not_the_end_of_data(table: str) -> None:
    assert load(table, [("p.csv", b"term\nfoo\n\\.\nbar\n")]) == 3
    assert rows_of(table, "term") == [("foo",), ("\\.",), ("bar",)]


def test_backslash_dot_on_a_line_inside_a_quoted_value(table: str) -> None:
    assert load(table, [("p.csv", b'term,n\n"x\n\\.\ny",1\n"\\.",2\n')], TWO) == 2
    assert rows_of(table, "term", "n") == [("x\n\\.\ny", 1), ("\\.", 2)]


def test_empty_string_and_null_stay_distinct(table: str) -> None:
    assert load(table, [("p.csv", b'term,n\n"",1\n,2\n" ",3\n')], TWO) == 3
    assert rows_of(table, "term", "n") == [("", 1), (None, 2), (" ", 3)]


def test_embedded_quotes_newlines_cr_and_bom(table: str) -> None:
    data = b'\xef\xbb\xbfterm,n\r\n"say ""hi""",1\r\n"two\nlines",2\r\n"cr\rinside",3\r\n"a,b",4\r\n'
    assert load(table, [("p.csv", data)], TWO) == 4
    assert rows_of(table, "term") == [('say "hi"',), ("two\nlines",), ("cr\rinside",), ("a,b",)]


@pytest.mark.parametrize("lead", [b"\n", b"\r\n", b"\n\n"])
def test_a_part_starting_with_blank_lines_loads_its_rows(table: str, lead: bytes) -> None:
    parts = [("p0.csv", b"term,n\nx,1\n"), ("p1.csv", lead + b"term,n\ny,2\nz,3\n")]
    assert load(table, parts, TWO) == 3
    assert rows_of(table, "term", "n") == [("x", 1), ("y", 2), ("z", 3)]


def test_header_only_and_empty_parts(table: str) -> None:
    parts = [
        ("p0.csv", b"term,n\n"),
        ("p1.csv", b""),
        ("p2.csv", b"term,n\nx,1\n"),
        ("p3.csv", b"n,term\r\n"),
    ]
    assert load(table, parts, TWO) == 1
    assert rows_of(table, "term", "n") == [("x", 1)]


def test_backslash_escaped_csv_is_read_with_the_workflows_escape_character(table: str) -> None:
    data = b'term,n\n"say \\"hi\\", then\nleave",1\n"back\\\\",2\nplain,3\n'
    dialect = CsvDialect(escape="\\")
    assert load(table, [("p.csv", data)], TWO, dialect=dialect) == 3
    assert rows_of(table, "term") == [('say "hi", then\nleave',), ("back\\",), ("plain",)]


@pytest.mark.parametrize("value", [b'"c:\\x"', b"c:\\x", b'"end\\"'])
def test_an_escape_before_another_character_is_refused_not_guessed(table: str, value: bytes) -> None:
    """``\\x`` could be the two characters or an escaped ``x``: nothing is loaded."""
    data = b"term,n\nok,1\n" + value + b",2\n"
    with pytest.raises(
        ResultLoadError, match=r"escape character .* before a character other|not readable CSV"
    ):
        load(table, [("p.csv", data)], TWO, dialect=CsvDialect(escape="\\"))
    assert query(sql.SQL("SELECT to_regclass(%s)"), (table,)) == [(None,)]


def test_other_separator_and_quote_characters(table: str) -> None:
    data = b"term;n\n'a;b';1\n'it''s';2\n"
    assert load(table, [("p.csv", data)], TWO, dialect=CsvDialect(separator=";", quote="'")) == 2
    assert rows_of(table, "term", "n") == [("a;b", 1), ("it's", 2)]


def test_gzip_parts_multi_member(table: str) -> None:
    data = gzip.compress(b"term,n\nx,1\n") + gzip.compress(b"y,2\n")
    assert load(table, [("p.csv.gz", data)], TWO) == 2


def test_truncated_gzip_fails_and_the_table_keeps_its_rows(table: str) -> None:
    load(table, [("p.csv", b"term,n\nold,1\n")], TWO, execution_id="exec-1")
    blob = gzip.compress(b"term,n\n" + b"x,1\n" * 5000)
    with pytest.raises(ResultLoadError, match="truncated gzip"):
        load(table, [("p.csv.gz", blob[: len(blob) // 2])], TWO, execution_id="exec-1")
    assert rows_of(table, "term", "n") == [("old", 1)]


def test_a_row_count_that_differs_from_the_recorded_one_fails_naming_both(table: str) -> None:
    load(table, [("p.csv", b"term\nold\n")])
    with pytest.raises(ResultLoadError, match=r"'p.csv': holds 2 rows, its recorded row count is 3"):
        load(table, [("p.csv", b"term\na\nb\n")], expected_rows={"p.csv": 3})
    with pytest.raises(ResultLoadError, match=r"hold 2 rows but 5 were recorded"):
        load(table, [("p.csv", b"term\na\nb\n")], expected_total=5)
    assert rows_of(table, "term") == [("old",)]


def test_records_the_parser_and_the_counter_disagree_on_fail(table: str) -> None:
    # A bare CR ends a record for a CSV parser but not for the newline counter: refuse, don't guess.
    with pytest.raises(ResultLoadError, match=r"parser read .* counter counted"):
        load(table, [("p.csv", b"term\ra\rb\n")])
    assert query(sql.SQL("SELECT to_regclass(%s)"), (table,)) == [(None,)]  # not even created


def test_unknown_or_missing_columns_in_a_part_fail(table: str) -> None:
    with pytest.raises(ResultLoadError, match=r"missing: \['n'\]"):
        load(table, [("p.csv", b"term\nx\n")], TWO)


# ---- saved files: exactly the manifest's files ----------------------------------------------------------
def save(output_path: Path, execution_id: str, parts: Sequence[tuple[str, bytes]], **kwargs: Any) -> Path:
    folder = execution_folder(str(output_path), execution_id)
    measure_results(
        [(name, iter([data])) for name, data in parts],
        save_to=object_storage_sink(folder),
        execution_id=execution_id,
        **kwargs,
    )
    return Path(folder)


def load_saved(table: str, output_path: Path, execution_id: str, columns: Sequence[TableColumn] = TWO) -> int:
    saved = saved_result(str(output_path), execution_id)
    with psycopg.connect(PG_DSN) as conn:
        return load_execution(
            conn,
            (table,),
            columns,
            execution_id,
            saved.parts(),
            instance_id=INSTANCE,
            dialect=saved.dialect,
            expected_rows=saved.expected_rows,
            expected_total=saved.row_count,
        )


def test_rerun_with_a_smaller_result_loads_only_its_files(table: str, tmp_path: Path) -> None:
    save(tmp_path, "first", [(f"part-{i:05d}.csv", b"term,n\na,1\nb,2\nc,3\n") for i in range(3)])
    save(tmp_path, "second", [(f"part-{i:05d}.csv", b"term,n\nx,1\ny,2\nz,3\n") for i in range(2)])
    assert load_saved(table, tmp_path, "second") == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "second"]


def test_hidden_looking_names_are_saved_and_loaded(table: str, tmp_path: Path) -> None:
    folder = save(tmp_path, "e", [(".part0.csv", b"term,n\na,1\n"), ("_part1.csv", b"term,n\nb,2\n")])
    assert sorted(p.name for p in folder.iterdir()) == sorted([".part0.csv", "_part1.csv", MANIFEST_NAME])
    assert load_saved(table, tmp_path, "e") == 2


def test_a_part_named_like_the_manifest_does_not_replace_it(tmp_path: Path) -> None:
    folder = save(tmp_path, "e", [(MANIFEST_NAME, b"term,n\na,1\n")])
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert [f["name"] for f in manifest["files"]] != [MANIFEST_NAME]
    assert manifest["execution_id"] == "e"


def test_files_not_in_the_manifest_are_ignored_and_changed_files_fail(table: str, tmp_path: Path) -> None:
    folder = save(tmp_path, "e", [("part-00000.csv", b"term,n\na,1\n")])
    (folder / "part-00009.csv").write_bytes(b"term,n\nstale,9\n")  # e.g. left by someone else
    (folder / ".part-00000.csv.abc.partial").write_bytes(b"term,n\nhalf")  # an interrupted write
    assert load_saved(table, tmp_path, "e") == 1
    (folder / "part-00000.csv").write_bytes(b"term,n\na,1\nb,2\n")
    with pytest.raises(ResultLoadError, match=r"has 15 bytes, its manifest says 11"):
        load_saved(table, tmp_path, "e")
    assert rows_of(table, "term") == [("a",)]


def test_a_folder_without_manifest_or_of_another_execution_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "part-00000.csv").write_bytes(b"term,n\na,1\n")
    with pytest.raises(ResultLoadError, match="no complete saved result of execution e"):
        saved_result(str(tmp_path), "e")
    save(tmp_path, "other", [("p.csv", b"term,n\na,1\n")])
    with pytest.raises(ResultLoadError, match="manifest of execution 'other'"):
        saved_result(str(tmp_path / "other"), "e")


def test_an_interrupted_save_leaves_no_file_under_its_final_name(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"term,n\na,1\n"
        raise ConnectionError("connection reset")

    folder = Path(execution_folder(str(tmp_path), "e"))
    with pytest.raises(ConnectionError):
        measure_results([("p.csv", broken())], save_to=object_storage_sink(str(folder)), execution_id="e")
    assert list(folder.iterdir()) == []


def test_the_saved_dialect_is_used_for_loading(table: str, tmp_path: Path) -> None:
    data = b'term,n\n"a \\"b\\"\nc",1\n'
    save(tmp_path, "e", [("p.csv", data)], dialect=CsvDialect(escape="\\"))
    assert load_saved(table, tmp_path, "e") == 1
    assert rows_of(table, "term") == [('a "b"\nc',)]


# ---- schema drift -----------------------------------------------------------------------------------------
DRIFT_V1 = [TableColumn("spend", "numeric(38,2)"), TableColumn("day", "date")]


def test_schema_drift_that_would_lose_data_fails_naming_the_columns(table: str) -> None:
    load(table, [("p.csv", b"spend,day\n1.25,2026-03-20\n")], DRIFT_V1, execution_id="e1")
    v2 = [TableColumn("spend", "numeric(38,4)"), TableColumn("day", "timestamp")]
    with pytest.raises(ResultLoadError) as failure:
        load(table, [("p.csv", b"spend,day\n1.2345,2026-03-20T23:30:00\n")], v2, execution_id="e2")
    message = str(failure.value)
    assert "'spend' is numeric(38,2) in the table but numeric(38,4)" in message
    assert 'on_schema_change="migrate"' in message
    assert query(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))) == [(1,)]


def test_lossless_widening_is_applied_and_logged(table: str, caplog: pytest.LogCaptureFixture) -> None:
    load(table, [("p.csv", b"spend,day\n1.25,2026-03-20\n")], DRIFT_V1, execution_id="e1")
    v2 = [TableColumn("spend", "numeric(38,2)"), TableColumn("day", "timestamp")]
    with caplog.at_level("INFO"):
        load(table, [("p.csv", b"spend,day\n2.50,2026-03-20T23:30:00\n")], v2, execution_id="e2")
    assert "column 'day' widened from date to timestamp (lossless)" in caplog.text
    assert [str(v) for (v,) in rows_of(table, "day")] == ["2026-03-20 00:00:00", "2026-03-20 23:30:00"]


def test_migrate_alters_the_table_and_loads_exactly(table: str) -> None:
    load(table, [("p.csv", b"spend,day\n1.25,2026-03-20\n")], DRIFT_V1, execution_id="e1")
    v2 = [TableColumn("spend", "numeric(38,4)"), TableColumn("day", "timestamp"), TableColumn("n", "bigint")]
    data = b"spend,day,n\n1.2345,2026-03-20T23:30:00,7\n"
    assert load(table, [("p.csv", data)], v2, execution_id="e2", on_schema_change="migrate") == 1
    (row,) = query(
        sql.SQL("SELECT spend::text, day::text, n FROM {} WHERE n = 7").format(sql.Identifier(table))
    )
    assert row == ("1.2345", "2026-03-20 23:30:00", 7)


def test_a_dropped_column_fails_unless_migrating(table: str) -> None:
    load(table, [("p.csv", b"spend,day\n1.25,2026-03-20\n")], DRIFT_V1, execution_id="e1")
    v2 = [TableColumn("spend", "numeric(38,2)")]
    with pytest.raises(ResultLoadError, match=r"'day' \(date\) is in the table but not in the execution"):
        load(table, [("p.csv", b"spend\n3.00\n")], v2, execution_id="e2")
    assert load(table, [("p.csv", b"spend\n3.00\n")], v2, execution_id="e2", on_schema_change="migrate") == 1


def test_bad_on_schema_change_is_named(table: str) -> None:
    with pytest.raises(ResultLoadError, match="allowed values are fail, migrate"):
        load(table, [("p.csv", b"term\nx\n")], on_schema_change="ignore")


def test_a_table_another_load_created_meanwhile_is_loaded_without_freeze(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backfill days load at once: this session may still see "no such table" (a stale catalog view)
    after another load created it; CREATE ... IF NOT EXISTS then skips and COPY FREEZE would fail
    ("table was not created or truncated in the current subtransaction"). The load must notice it
    did not create the table and load it as an existing one."""
    from airflow_provider_amc.transfers import postgres_load

    load(table, [("p0", b"term\nfirst\n")], execution_id="exec-0")  # the other load's table
    real = postgres_load._existing_columns
    calls: list[str] = []

    def stale_view(cur: Any, regclass: str) -> Any:
        calls.append(regclass)
        return None if len(calls) <= 2 else real(cur, regclass)

    monkeypatch.setattr(postgres_load, "_existing_columns", stale_view)
    assert load(table, [("p0", b"term\nsecond\nthird\n")], execution_id="exec-1") == 2
    assert sorted(rows_of(table, "term")) == [("first",), ("second",), ("third",)]
    assert len(calls) == 3  # stale twice, then read after CREATE ... IF NOT EXISTS skipped


# ---- the instance column (fan-out over instances into one table) ----------------------------------
def rows_by_instance(table: str) -> dict[tuple[str | None, str], list[str]]:
    found: dict[tuple[str | None, str], list[str]] = {}
    for instance, execution_id, term in rows_of(table, "amc_instance_id", "amc_execution_id", "term"):
        found.setdefault((instance, execution_id), []).append(term)
    return found


def test_the_same_execution_id_in_two_instances_never_replaces_the_others_rows(table: str) -> None:
    """AMC addresses an execution by (instance, id): a reload is scoped to its own instance."""
    load(table, [("p.csv", b"term\na1\na2\n")], execution_id="e1", instance_id="amcone")
    load(table, [("p.csv", b"term\nb1\n")], execution_id="e1", instance_id="amctwo")
    load(table, [("p.csv", b"term\na3\n")], execution_id="e1", instance_id="amcone")  # re-run in one
    assert rows_by_instance(table) == {("amcone", "e1"): ["a3"], ("amctwo", "e1"): ["b1"]}


def legacy_table(table: str) -> None:
    """A results table as versions without ``amc_instance_id`` created it, with one execution's rows."""
    query(
        sql.SQL(
            "CREATE TABLE {} (amc_execution_id text NOT NULL "
            "DEFAULT current_setting('airflow_provider_amc.execution_id'), term text)"
        ).format(sql.Identifier(table))
    )
    query(sql.SQL("INSERT INTO {} VALUES ('old', 'x'), ('old', 'y')").format(sql.Identifier(table)))


def test_a_table_without_the_instance_column_fails_naming_it(table: str) -> None:
    legacy_table(table)
    with pytest.raises(ResultLoadError) as failure:
        load(table, [("p.csv", b"term\nz\n")], execution_id="new")
    assert "'amc_instance_id'" in str(failure.value)
    assert 'on_schema_change="migrate"' in str(failure.value)
    assert rows_of(table, "amc_execution_id", "term") == [("old", "x"), ("old", "y")]  # untouched


def test_migrate_adds_the_instance_column_and_old_rows_keep_matching_by_execution(table: str) -> None:
    legacy_table(table)
    assert load(table, [("p.csv", b"term\nz\n")], execution_id="new", on_schema_change="migrate") == 1
    assert rows_by_instance(table) == {(None, "old"): ["x", "y"], (INSTANCE, "new"): ["z"]}
    # Reloading the old execution replaces its instance-less rows: no second copy.
    assert load(table, [("p.csv", b"term\nx\n")], execution_id="old") == 1
    assert rows_by_instance(table) == {(INSTANCE, "old"): ["x"], (INSTANCE, "new"): ["z"]}


def test_a_newer_execution_loaded_only_in_another_instance_does_not_refuse_the_load(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "newer execution loaded" check reads the rows of the load's own instance only."""
    from airflow_provider_amc.client import WorkflowExecution
    from airflow_provider_amc.lifecycle import RequestIdentity, amc_instant
    from airflow_provider_amc.records import ExecutionRecords
    from airflow_provider_amc.transfers.amc_to_postgres import replace_plan

    monkeypatch.setenv("AIRFLOW_CONN_AMC_EXACT_PG", PG_DSN)
    records = ExecutionRecords("amc_exact_pg", f"{table}_exec")
    identity = RequestIdentity(
        instance_id="amcone",
        workflow_id="w",
        window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-02T00:00:00Z",
    )
    try:
        records.upsert(
            "newer",
            instance_id="amcone",
            request_key=identity.key,
            amc_created_at=amc_instant("2026-01-03T00:00:00Z"),
        )
        # An execution with the same id in another instance is loaded: not this request's.
        load(table, [("p.csv", b"term\nb\n")], execution_id="newer", instance_id="amctwo")
        older = WorkflowExecution(
            workflow_execution_id="older", status="SUCCEEDED", create_time="2026-01-02T12:00:00Z"
        )
        plan = replace_plan(records, (table,), older, identity)
        with psycopg.connect(PG_DSN) as conn, conn.cursor() as cur:
            assert plan(cur) == []  # nothing older to replace, nothing newer loaded in amcone
        load(table, [("p.csv", b"term\na\n")], execution_id="newer", instance_id="amcone")
        with psycopg.connect(PG_DSN) as conn, conn.cursor() as cur, pytest.raises(NewerExecutionLoaded):
            plan(cur)
    finally:
        query(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"{table}_exec")))
