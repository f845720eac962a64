"""Build a release's zip from one snapshot of the database.

Every table is a PostgreSQL ``COPY (SELECT ...) TO STDOUT`` inside one REPEATABLE READ, READ ONLY
transaction, so all files come from the same moment; the rows stream in fixed-size blocks straight
into the zip, so memory stays flat in the number of rows. The same lock always gives the same
bytes: every query has a total order, nothing in a file depends on when it was built, the zip
entries have a fixed order, time (the lock's) and permissions, and compression always receives the
same blocks. (Byte-identical on the same installation: another zlib could compress differently.)
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from django.db import connection, transaction
from psycopg import pq

from closeout.models import DatabaseLock, ReleaseVariant
from closeout.releases import analyse, catalogue, sap
from closeout.releases.catalogue import Column, Config, Table
from closeout.releases.statfiles import StatColumn, write_stat_files
from trial import selectors
from trial.errors import Conflict
from trial.models import Trial

BLOCK = 1 << 20  # bytes handed to the compressor at a time: fixed, so compression is reproducible
# Deflate's fastest level: the CSV files still shrink six- to eightfold; level 6 saves about a quarter
# more but compresses at a third of the speed, which would make compression a large part of the build.
COMPRESS_LEVEL = 1
STATA_NAME = 32  # characters of a Stata name
ANALYSIS_CHUNK = 5000  # rows of the Stata/SPSS file converted at a time
ANALYSIS_NAME = "analysis"
STAT_FILES = f"{ANALYSIS_NAME}.dta {ANALYSIS_NAME}.sav"  # their rows of the data dictionary name both files
ANALYSIS_SOURCES = ("analysis", "questionnaire_scores")  # the Stata/SPSS file's tables, in its column order
# The tables analysis/analyse.py reads (sessions: in the unblinded variant only).
SAP_SOURCES = ("analysis", "questionnaire_scores", "adverse_events", "baseline", "episodes", "sessions")
SAP_FOLDER = "analysis"
AUDIT_HEADS = "audit_chain_heads.json"
FILE_MODE = 0o100644  # a regular file, rw-r--r--


@dataclass(frozen=True)
class ReleaseFile:
    name: str
    rows: int | None
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Built:
    files: list[ReleaseFile]  # every file of the zip, manifest.csv last
    zip_sha256: str
    zip_bytes: int


class ReleaseBuildError(Conflict):
    pass


# --- The snapshot -----------------------------------------------------------------------------------


@contextmanager
def snapshot() -> Iterator[Any]:
    """A cursor in one REPEATABLE READ, READ ONLY transaction: every statement sees the same data.

    Inside a transaction the caller opened (as tests do), its isolation cannot change any more; the
    build then reads in the caller's transaction."""
    outermost = not connection.in_atomic_block
    if outermost:
        with connection.cursor():  # connect (and health-check) before the transaction begins
            pass
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # Room to order each response's answers and a chunk of rows in memory; larger sorts spill to disk.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # A large release's pivots run longer than a page's statement limit (settings).
        cursor.execute("SET LOCAL statement_timeout = 0")
        yield cursor


# --- Writing the zip -------------------------------------------------------------------------------


class _Entry:
    """One file of the zip, written in blocks of exactly BLOCK bytes, hashed on the way."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._sha = hashlib.sha256()
        self.size = 0
        self.rows: int | None = None  # for tables: data rows, header excluded

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        if len(self._buffer) >= BLOCK:
            whole = len(self._buffer) - len(self._buffer) % BLOCK
            view = memoryview(self._buffer)
            for start in range(0, whole, BLOCK):
                self._emit(view[start : start + BLOCK])
            view.release()
            del self._buffer[:whole]

    def _emit(self, block: bytes | memoryview) -> None:
        self._sha.update(block)
        self._stream.write(block)
        self.size += len(block)

    def close(self) -> str:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        self._stream.close()
        return self._sha.hexdigest()


class _Zip:
    def __init__(self, target: BinaryIO, *, folder: str, moment: dt.datetime) -> None:
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        self.folder = folder
        moment = moment.astimezone(dt.UTC)
        self.date_time = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
        if moment.year < 1980:
            self.date_time = (1980, 1, 1, 0, 0, 0)
        self.files: list[ReleaseFile] = []

    @contextmanager
    def entry(self, name: str) -> Iterator[_Entry]:
        info = zipfile.ZipInfo(f"{self.folder}/{name}", date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # (an alias of compress_level from 3.13)
        info.create_system = 3
        info.external_attr = FILE_MODE << 16
        entry = _Entry(cast(BinaryIO, self.zip.open(info, "w", force_zip64=True)))
        try:
            yield entry
        finally:
            sha = entry.close()
        self.files.append(ReleaseFile(name=name, rows=entry.rows, sha256=sha, bytes=entry.size))

    def add(self, name: str, data: bytes, rows: int | None = None) -> None:
        with self.entry(name) as entry:
            entry.write(data)
            entry.rows = rows

    def close(self) -> None:
        self.zip.close()


# --- The build -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a release comes from, as its README states it."""

    trial_name: str
    registration: str
    lock_version: int
    signer_name: str
    locked_at: dt.datetime
    meaning: str
    variant: str


def release_zip_write(
    *, trial: Trial, lock: DatabaseLock, variant: str, target: BinaryIO, progress: Callable[[int], None] = lambda percent: None
) -> Built:
    """Write the release of ``lock`` in ``variant`` to ``target`` (a new, seekable binary file)."""
    blinded = variant == ReleaseVariant.BLINDED
    source = Source(
        trial_name=trial.name,
        registration=trial.registration,
        lock_version=lock.version,
        signer_name=lock.signer_name,
        locked_at=lock.locked_at,
        meaning=lock.meaning,
        variant=variant,
    )
    archive = _Zip(target, folder=f"{trial.code}-lock{lock.version}-{variant}", moment=lock.locked_at)
    try:
        _write_files(archive, source=source, trial=trial, lock=lock, blinded=blinded, progress=progress)
    finally:
        archive.close()
    progress(95)
    target.seek(0)
    sha, size = hashlib.sha256(), 0
    while block := target.read(BLOCK):
        sha.update(block)
        size += len(block)
    return Built(files=archive.files, zip_sha256=sha.hexdigest(), zip_bytes=size)


def _write_files(
    archive: _Zip, *, source: Source, trial: Trial, lock: DatabaseLock, blinded: bool, progress: Callable[[int], None]
) -> None:
    with snapshot() as cursor:
        cursor.execute(
            "SELECT l.unlocked_at IS NULL AND t.data_locked_at IS NOT NULL FROM trial_databaselock l "
            "JOIN trial_trial t ON t.id = l.trial_id WHERE l.id = %s",
            [lock.pk],
        )
        row = cursor.fetchone()
        if not row or not row[0]:
            raise ReleaseBuildError(
                f"Lock v{lock.version} was undone before this release was built, so its data may have changed. "
                "Create a release from the current lock."
            )
        config = catalogue.config_load(trial=trial, blinded=blinded, cursor=cursor, locked_at=lock.locked_at)
        tables = catalogue.tables(config)
        steps = len(tables) + 3
        base = catalogue.base_cte(config)
        analysis = _analysis_columns(config)
        with tempfile.TemporaryDirectory(prefix="release-") as work:
            kept: dict[str, Path] = {}
            for done, table in enumerate(tables, start=1):
                with archive.entry(table.file) as entry:
                    if table.name in ANALYSIS_SOURCES or table.name in SAP_SOURCES:
                        # Also kept aside: the Stata and SPSS files and the analysis are made from these tables.
                        kept[table.name] = Path(work) / table.file
                        with open(kept[table.name], "wb") as aside:
                            entry.rows = copy_rows(cursor, base + table.select(), _both(entry.write, aside.write))
                    else:
                        entry.rows = copy_rows(cursor, base + table.select(), entry.write)
                progress(95 * done // steps)
            paths = {fmt: Path(work) / f"{ANALYSIS_NAME}.{fmt}" for fmt in ("dta", "sav")}
            with open(paths["dta"], "w+b") as dta, open(paths["sav"], "w+b") as sav:
                rows = write_stat_files(
                    targets={"dta": dta, "sav": sav},
                    columns=[stat for _, stat, _ in analysis],
                    chunks=_analysis_chunks(kept, analysis),
                    file_label=f"{trial.name} lock v{lock.version} ({source.variant})",
                    created=lock.locked_at.astimezone(dt.UTC),
                )
            for path in paths.values():
                with archive.entry(path.name) as entry, open(path, "rb") as handle:
                    while block := handle.read(BLOCK):
                        entry.write(block)
                    entry.rows = rows
            progress(95 * (steps - 2) // steps)
            _write_analysis(archive, config=config, source=source, work=Path(work))
        # The audit trail's chain heads as they were at the lock: kept with the release, outside the
        # database, `verify_audit --heads` proves the trail up to them was not rewritten since.
        heads = selectors.audit_chain_heads(at=lock.locked_at, cursor=cursor)
        archive.add(AUDIT_HEADS, (json.dumps(heads, sort_keys=True, indent=2) + "\n").encode(), rows=len(heads))
        progress(95 * (steps - 1) // steps)
    dictionary = _dictionary(config, tables, analysis)
    archive.add("dictionary.csv", dictionary[0], rows=dictionary[1])
    archive.add("datapackage.json", _datapackage(source, config, tables, archive.files))
    archive.add("README.md", _readme(source, config, tables, archive.files).encode())
    listed = sorted(archive.files, key=lambda f: f.name)
    archive.add(
        "manifest.csv", _csv([("name", "rows", "sha256"), *((f.name, f.rows, f.sha256) for f in listed)]), rows=len(listed)
    )


def _write_analysis(archive: _Zip, *, config: Config, source: Source, work: Path) -> None:
    """analysis/: the plan, the script that runs it (this installation's closeout/releases/analyse.py,
    byte for byte), its requirements and what it writes, run here on the tables kept aside."""
    packages = analyse.installed_versions()
    plan = sap.plan_build(
        config=config, trial_name=source.trial_name, lock_version=source.lock_version, variant=source.variant, packages=packages
    )
    (work / SAP_FOLDER).mkdir()
    plan_bytes = (json.dumps(plan, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    (work / SAP_FOLDER / analyse.PLAN).write_bytes(plan_bytes)
    written = analyse.outputs(work, plan)
    archive.add(f"{SAP_FOLDER}/{analyse.PLAN}", plan_bytes)
    archive.add(f"{SAP_FOLDER}/analyse.py", Path(analyse.__file__).read_bytes())
    archive.add(f"{SAP_FOLDER}/{analyse.REQUIREMENTS}", analyse.requirements_text(packages).encode())
    for name, data in written.items():
        archive.add(f"{SAP_FOLDER}/{name}", data)


def _both(*writers: Callable[[bytearray], object]) -> Callable[[bytearray], None]:
    def write(data: bytearray) -> None:
        for writer in writers:
            writer(data)

    return write


def copy_rows(cursor: Any, query: str, write: Callable[[bytearray], object]) -> int:
    """Run ``COPY (query) TO STDOUT`` as CSV with a header on psycopg's connection and hand the
    bytes to ``write`` about a BLOCK at a time; return the number of rows.

    The rows are read from libpq directly: psycopg's Python generator per row costs more than the
    row itself, and the long tables have millions of rows. The benchmark's plain COPY uses this
    same function, so the two are compared on the same footing."""
    pgconn = cursor.cursor.connection.pgconn
    result = pgconn.exec_(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)".encode())
    if result.status != pq.ExecStatus.COPY_OUT:
        raise ReleaseBuildError(f"The export query failed: {(result.error_message or b'').decode(errors='replace').strip()}")
    buffer = bytearray()
    get_copy_data = pgconn.get_copy_data
    while True:
        size, data = get_copy_data(0)
        if size < 0:
            break
        buffer += data
        if len(buffer) >= BLOCK:
            write(buffer)
            buffer.clear()
    if buffer:
        write(buffer)
    final = pgconn.get_result()
    while pgconn.get_result() is not None:  # drain, so the connection is ready for the next statement
        pass
    if final is None or final.status != pq.ExecStatus.COMMAND_OK:
        message = (final.error_message if final is not None else b"") or b""
        raise ReleaseBuildError(f"The export query failed: {message.decode(errors='replace').strip()}")
    return int(final.command_tuples or 0)


def _csv(rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return out.getvalue().encode()


# --- The analysis file -----------------------------------------------------------------------------


AnalysisColumn = tuple[Column, StatColumn, dict[str, int] | None]


def _analysis_columns(config: Config) -> list[AnalysisColumn]:
    """Each column of the Stata/SPSS file, and for a coded text column its codes as numbers 1, 2, ...
    (in the data dictionary's order, labelled with the codes' labels)."""
    result: list[AnalysisColumn] = []
    labelled = 0
    for column in catalogue.analysis_columns(config):
        name = column.name
        if column.codes and not (column.type == "string" and column.multiple):
            # Stata names the value labels <variable><counter> in at most 32 characters: a longer name is cut.
            name = name[: STATA_NAME - len(str(labelled))]
            labelled += 1
        if column.type == "string" and column.codes and not column.multiple:
            numbers = {code: index for index, (code, _) in enumerate(column.codes, start=1)}
            labels = {index: label for index, (_, label) in enumerate(column.codes, start=1)}
            result.append((column, StatColumn(name, column.label, "number", value_labels=labels), numbers))
        elif column.type == "string":
            width = column.width or max(1, sum(len(code) + 1 for code, _ in column.codes))
            result.append((column, StatColumn(name, column.label, "string", width=width), None))
        else:
            labels = {int(code): label for code, label in column.codes}
            result.append((column, StatColumn(name, column.label, "number", value_labels=labels), None))
    return result


def _analysis_chunks(kept: dict[str, Path], columns: list[AnalysisColumn]) -> Iterator[list[list[Any]]]:
    """The analysis rows, ANALYSIS_CHUNK at a time, column by column, converted for the stat files:
    each row of the first source table with the other tables' columns for the same participant, read
    back from the CSV files just written (each lists the randomised participants, in the same order)."""
    first, *others = ANALYSIS_SOURCES
    with ExitStack() as files:
        readers = {
            name: csv.reader(files.enter_context(open(kept[name], newline="", encoding="utf-8"))) for name in ANALYSIS_SOURCES
        }
        headers = {name: next(reader) for name, reader in readers.items()}
        wanted = [column.name for column, _, _ in columns]
        main = headers[first]
        extra = {
            name: [headers[name].index(column) for column in wanted if column in headers[name] and column not in main]
            for name in others
        }
        if main + [headers[n][i] for n in extra for i in extra[n]] != wanted:
            raise ReleaseBuildError("The analysis file's columns do not match its tables.")
        pending = {name: next(readers[name], None) for name in extra}
        blank = {name: [""] * len(extra[name]) for name in extra}
        while True:
            rows = []
            for row in readers[first]:
                for name in extra:
                    other = pending[name]
                    if other is not None and other[0] == row[0]:
                        row = row + [other[i] for i in extra[name]]
                        pending[name] = next(readers[name], None)
                    else:
                        row = row + blank[name]
                rows.append(row)
                if len(rows) == ANALYSIS_CHUNK:
                    break
            if not rows:
                break
            yield [
                _convert(values, column, stat, numbers)
                for values, (column, stat, numbers) in zip(zip(*rows, strict=True), columns, strict=True)
            ]
        if any(other is not None for other in pending.values()):
            raise ReleaseBuildError(f"The scores list a participant the {first} table does not.")


def _convert(values: Sequence[str], column: Column, stat: StatColumn, numbers: dict[str, int] | None) -> list[Any]:
    if numbers is not None:
        unknown = {value for value in values if value and value not in numbers}
        if unknown:
            raise ReleaseBuildError(f"{column.name}: '{sorted(unknown)[0]}' is not one of its codes.")
        return [numbers[value] if value else None for value in values]
    if stat.kind == "number":
        return [float(value) if value else None for value in values]
    return [value or None for value in values]


# --- The data dictionary, the Data Package and the README ----------------------------------------


def _codes_text(codes: catalogue.Codes) -> str:
    return "; ".join(f"{code}={label}" for code, label in codes)


def _dictionary(config: Config, tables: list[Table], analysis: list[AnalysisColumn]) -> tuple[bytes, int]:
    rows: list[tuple[Any, ...]] = [("variable", "table", "instrument", "type", "label", "units", "codes")]
    for table in tables:
        for column in table.columns:
            rows.append((column.name, table.name, "", column.type, column.label, column.units, _codes_text(column.codes)))
        if table.name == "questionnaire_items":
            for instrument in config.instruments:
                for item in instrument.items:
                    rows.append(
                        (
                            item.code,
                            "questionnaire_items",
                            instrument.code,
                            item.type,
                            item.label,
                            item.units,
                            _codes_text(item.codes),
                        )
                    )
    for column, stat, numbers in analysis:
        if numbers is not None:
            codes = "; ".join(f"{number}={label}" for number, label in stat.value_labels.items())
            kind = "integer"
        else:
            codes, kind = _codes_text(column.codes), column.type
        rows.append((stat.name, STAT_FILES, "", kind, column.label, column.units, codes))
    return _csv(rows), len(rows) - 1


def _field(column: Column) -> dict[str, Any]:
    field: dict[str, Any] = {"name": column.name, "type": column.type, "description": column.label}
    if column.units:
        field["description"] += f" ({column.units})"
    if column.codes:
        field["description"] += ". Codes: " + _codes_text(column.codes)
        if not column.multiple:
            enum = [int(code) if column.type == "integer" else code for code, _ in column.codes]
            field["constraints"] = {"enum": enum}
    return field


def _datapackage(source: Source, config: Config, tables: list[Table], files: list[ReleaseFile]) -> bytes:
    by_name = {f.name: f for f in files}
    resources: list[dict[str, Any]] = []
    for table in tables:
        built = by_name[table.file]
        schema: dict[str, Any] = {"fields": [_field(column) for column in table.columns], "missingValues": [""]}
        if table.primary_key:
            schema["primaryKey"] = list(table.primary_key)
        if table.name != "participants" and any(c.name == "study_id" for c in table.columns):
            schema["foreignKeys"] = [{"fields": "study_id", "reference": {"resource": "participants", "fields": "study_id"}}]
        resources.append(
            {
                "name": table.name,
                "path": table.file,
                "profile": "tabular-data-resource",
                "title": table.title,
                "description": table.description,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "bytes": built.bytes,
                "hash": f"sha256:{built.sha256}",
                "dialect": {"delimiter": ",", "lineTerminator": "\n", "quoteChar": '"', "doubleQuote": True, "header": True},
                "schema": schema,
            }
        )
    for fmt, media in (("dta", "application/x-stata-dta"), ("sav", "application/x-spss-sav")):
        built = by_name[f"{ANALYSIS_NAME}.{fmt}"]
        resources.append(
            {
                "name": f"{ANALYSIS_NAME}-{fmt}",
                "path": built.name,
                # Not tabular: a binary file described by its own labels (and dictionary.csv); Frictionless
                # checks its size and hash only.
                "profile": "data-resource",
                "type": "file",
                "title": "Analysis file (analysis.csv and the scores, one row per randomised participant)",
                "format": fmt,
                "mediatype": media,
                "bytes": built.bytes,
                "hash": f"sha256:{built.sha256}",
            }
        )
    package = {
        # A data package, not a tabular one: the Stata and SPSS files are resources too.
        "profile": "data-package",
        "name": f"{config.trial_code}-lock-{source.lock_version}-{source.variant}".lower(),
        "title": f"{source.trial_name}: dataset of database lock v{source.lock_version} ({source.variant})",
        "description": "A locked, de-identified dataset; see README.md and dictionary.csv.",
        "version": f"{source.lock_version}.0.0",
        "created": source.locked_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": resources,
    }
    return (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode()


def _readme(source: Source, config: Config, tables: list[Table], files: list[ReleaseFile]) -> str:
    rows = {f.name: f.rows for f in files}
    blinded = source.variant == ReleaseVariant.BLINDED
    lines = [
        f"# {source.trial_name}: dataset of database lock v{source.lock_version}",
        "",
        f"- Trial: {source.trial_name}" + (f" ({source.registration})" if source.registration else ""),
        f"- Database lock: version {source.lock_version}, signed by {source.signer_name} on "
        f'{source.locked_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC, meaning "{source.meaning}"',
        f"- Variant: **{source.variant}**"
        + (
            ": no allocation and no arm anywhere. The tables only the intervention arm has (education sessions, "
            "walking prescriptions, walking diary) are left out, as they would reveal it; an adverse event reported "
            "at an education session reads as entered by staff."
            if blinded
            else ": with the allocation, the arm in the outcomes and the intervention's own tables."
        ),
        "",
        "Every file was read from the same snapshot of the locked database. Building a release of the same lock "
        "and variant again gives byte-identical files and zip; `manifest.csv` lists each file's rows and SHA-256.",
        "",
        "## Files",
        "",
        "| file | rows | contents |",
        "| --- | ---: | --- |",
    ]
    for table in tables:
        lines.append(f"| `{table.file}` | {rows.get(table.file, '')} | {table.title}: {table.description} |")
    for fmt, what in (("dta", "Stata 14+"), ("sav", "SPSS")):
        lines.append(
            f"| `{ANALYSIS_NAME}.{fmt}` | {rows.get(f'{ANALYSIS_NAME}.{fmt}', '')} | {what}: `analysis.csv` and the "
            "scores, one row per randomised participant, with variable and value labels (coded text as numbers 1, 2, ...) |"
        )
    for file in files:
        if file.name.startswith(f"{SAP_FOLDER}/"):
            lines.append(f"| `{file.name}` | | {_sap_file_description(file.name, blinded)} |")
    lines += [
        "| `dictionary.csv` | | Every variable: table, type, label, units and allowed codes with their labels; "
        "questionnaire items by instrument |",
        "| `datapackage.json` | | Frictionless Data Package: each CSV's schema, with the allowed codes as constraints |",
        f"| `{AUDIT_HEADS}` | | The audit trail's chain heads at the lock ({{event table: hash of its last event}}): "
        "keep them; `python manage.py verify_audit --heads` checks the trail still leads to them |",
        "| `manifest.csv` | | Every other file's name, rows and SHA-256 |",
        "",
        "## Dates",
        "",
        "Every date is a number of days from randomisation (day 0 is the randomisation date in the participant's "
        "time zone, as the follow-up schedule counts it); a negative number is before randomisation. The screening "
        f"log, which precedes randomisation, counts days from the start of recruitment ({config.recruitment_start:%B %Y}).",
        "",
        "## De-identification",
        "",
        "- No names, e-mail addresses, phone numbers, consent signatures or personal links, in any variant: the "
        "contact-details table is read only for the participant's time zone, which dates day 0, and is not written.",
        "- No free text: withdrawal reasons, reasons for declining, adverse-event descriptions, reports, actions and "
        "follow-up notes, session notes, prescription progressions and free-text questionnaire answers are left out, "
        "as they may name people. Adverse events keep their coded fields (category, severity, seriousness, "
        "relatedness, expectedness, outcome, dates); their narratives stay in the trial system.",
        "- No calendar dates (see Dates) and no database ids; physiotherapists appear as pseudonyms (PT001, ...).",
        "- No date of birth: `baseline.csv` and `analysis.csv` give the age in whole years at randomisation (`age_years`).",
        "- Withdrawals are recorded with their scope. A participant who withdrew consent for further data use keeps "
        "the data collected before, flagged by `withdrawal_scope`; apply the protocol's rule for such data.",
        "",
        "## Outcomes",
        "",
        "`outcomes.csv` gives, for each time-to-event outcome, the time to the first event or to censoring, whether the "
        "event was observed, and why follow-up ended without one. The value is the final one: an adjudicated value "
        "when the outcome was adjudicated, else the derived one; a censoring time is given only without an event.",
        "",
        "## Analysis",
        "",
        "`analysis.csv` is the table to start from: one row per randomised participant (intention to treat: `itt` is 1 "
        "for all), with site and strata"
        + ("" if blinded else ", the arm")
        + ", `randomised_day` (calendar time: days from the start of recruitment), `planned_followup_days` (to the "
        "participant's own planned end of follow-up), baseline covariates, and for each outcome `<outcome>_days`, "
        "`<outcome>_event` (1/0) and `<outcome>_censor_reason`. A participant without derived outcomes keeps the row "
        "with empty outcome cells. `questionnaires_expected` counts the outcome questionnaires due by the lock (or "
        "answered), `questionnaires_missed` those of them not answered."
        + (
            ""
            if blinded
            else f" `per_protocol` is 1 for a participant still in follow-up when the first outcome questionnaire was "
            f"due who, in the intervention arm, also attended at least {config.per_protocol_min_sessions} sessions and "
            "never stopped the intervention (configured on the intervention policy)."
        ),
        "",
        "`episodes.csv` lists every episode of back pain the monthly questionnaires reported; the outcomes are derived "
        "from them. `baseline.csv` holds the whole baseline questionnaire. The questionnaire tables give the day each "
        "questionnaire was answered and whether the participant or staff entered it.",
        "",
        "## The statistical analysis plan's analysis",
        "",
        "`analysis/` holds the analysis the plan sets out, run on this release's own files when it was built: "
        + (
            "pooled only, as the release is blinded (numbers, events and median times to event with the Kaplan-Meier "
            "curve, adverse events, the baseline table and the scores by timepoint; no arm and nothing compared)."
            if blinded
            else "for each time-to-event outcome the numbers, events and median times per arm, the hazard ratio from a Cox "
            "model on the arm, and one stratified by the randomisation strata; Kaplan-Meier curves; linear mixed models "
            "for the repeated scores adjusted for their baseline; adverse events by category with Fisher's exact test; "
            "the baseline table."
        ),
        f"To reproduce it, install the versions in `{SAP_FOLDER}/{analyse.REQUIREMENTS}` (`pip install -r "
        f"{SAP_FOLDER}/{analyse.REQUIREMENTS}`), then from this folder run `python {SAP_FOLDER}/analyse.py . --out "
        f"somewhere`: `results.json` comes out byte for byte as `{SAP_FOLDER}/{analyse.RESULTS}`.",
        "",
    ]
    return "\n".join(lines)


def _sap_file_description(name: str, blinded: bool) -> str:
    base = name.removeprefix(f"{SAP_FOLDER}/")
    if base == analyse.PLAN:
        return "The analysis plan: outcomes, " + ("" if blinded else "arms compared, ") + "strata, scores and alpha"
    if base == "analyse.py":
        return "The analysis script (Python; no database needed): reads this release's CSV files and the plan"
    if base == analyse.REQUIREMENTS:
        return "The Python packages, and their versions, the analysis was run with"
    if base == analyse.RESULTS:
        return "The results, as numbers (floats to 6 significant digits)"
    if base == analyse.REPORT:
        return "The results as a report to read (tables and figures; self-contained)"
    return "Kaplan-Meier plot, with the numbers at risk"
