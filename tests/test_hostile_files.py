"""Hostile customer files through every way in: ``assistant.batch.score_file``, the CLI
(``segment-assistant score``) and the web app's upload handler (``assistant.batch_ui.score_upload``),
plus the upload route of the served app (size limit, cleanup).

Complements tests/test_batch.py (which owns the format rules): here each file is tried through all
three entry points. A file that cannot be read gets one clear line (exit code 2 on the command
line, a message in the web app) and leaves nothing behind; a file with some bad rows gets its good
rows scored and the others listed in the errors file with their reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import random
import re
import socket
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _soak import ServerProcess, scored_file_path, sse_result
from _web_helpers import serving

from assistant.adapters import cli
from assistant.adapters.batch_tab import score_upload
from assistant.adapters.web import create_app
from assistant.batch.score import score_file
from assistant.batch.texts import load_batch_texts
from assistant.core.errors import DataFileError, InvalidValueError
from assistant.core.fields import FIELD_NAMES
from assistant.core.schemas import parse_profile
from assistant.core.settings import Settings
from assistant.model.synthetic import generate_customers, write_customers

HEADER = ["ID", *FIELD_NAMES]
GOOD = [38, 71000, 1200, 5, 7, 6, 14]
MB = 1 << 20


def csv_bytes(rows: list[list], *, sep: str = ",", header: list[str] | None = None, encoding: str = "utf-8",
              newline: str = "\n") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator=newline)
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def raw_file(tmp_path: Path, name: str, edits: dict[tuple[int, str], object]) -> Path:
    frame = generate_customers(12, seed=31, quirks=False).astype(object)
    for (row, column), value in edits.items():
        frame.loc[row, column] = value
    return write_customers(frame, tmp_path / name)


def junk(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


@pytest.fixture(scope="module")
def texts():
    return load_batch_texts().ui


# ---------------------------------------------------------------------------- files refused as a whole

RAW_MISSING = "\t".join(c for c in ("ID", "Year_Birth", "Income", "Dt_Customer", "MntFruits", "NumWebPurchases")) + \
    "\n1\t1970\t50000\t01-01-2014\t5\t3\n"

REFUSED = {
    "empty": (b"", "is empty"),
    "header_only": (csv_bytes([]), "has a header but no data rows"),
    "header_only_crlf_bom": (csv_bytes([], encoding="utf-8-sig", newline="\r\n"), "has a header but no data rows"),
    "binary_junk": (junk(64 * 1024, seed=1), "is not a text file"),
    "png_renamed_csv": (b"\x89PNG\r\n\x1a\n" + junk(4000, seed=2), "is not a text file"),
    "gzipped_csv": (gzip.compress(csv_bytes([[1, *GOOD]] * 50)), "is not a text file"),
    "utf16_without_bom": (csv_bytes([[1, *GOOD]], encoding="utf-16-le"), "looks like UTF-16 without a byte-order mark"),
    "xlsx_renamed_csv": (b"PK\x03\x04" + junk(3000, seed=3), "looks like a spreadsheet"),
    "high_bytes_no_delimiter": (bytes(range(128, 256)) * 64, "cannot find a delimiter"),
    "one_enormous_line": (b"a" * (5 * MB), "cannot find a delimiter"),
    "pipe_delimited": (csv_bytes([[1, *GOOD]], sep="|"), "cannot find a delimiter"),
    "semicolon_header_comma_rows": (";".join(HEADER).encode() + b"\n" + b"1,38,71000,1200,5,7,6,14\n" * 3,
                                    "is the delimiter semicolon right?"),
    "missing_columns": (csv_bytes([[1, 38, 71000]], header=["ID", "age", "income"]),
                        "missing column(s) for: total_spending, web_purchases"),
    "raw_missing_columns": (RAW_MISSING.encode(), "missing required column(s): Recency, MntWines"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_an_unreadable_file_is_refused_plainly_everywhere(name, service, texts, tmp_path, capsys):
    content, message = REFUSED[name]
    src = tmp_path / "in" / f"{name}.csv"
    src.parent.mkdir()
    src.write_bytes(content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    # the library: one DataFileError, one line, nothing written
    with pytest.raises(DataFileError, match=re.escape(message)) as info:
        score_file(service, src, out_dir / "scored.csv")
    assert "\n" not in str(info.value) and name in str(info.value)
    assert list(out_dir.iterdir()) == []

    # the command line: exit 2, one line on stderr, no traceback, nothing written
    assert cli.main(["score", str(src), "-o", str(out_dir / "scored.csv")]) == 2
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]         # (after the progress line, when reading had begun)
    assert last.startswith("segment-assistant score: error: ") and message in last
    assert captured.err.count("error:") == 1 and "Traceback" not in captured.err
    assert list(out_dir.iterdir()) == []

    # the web app's handler: a message, the upload deleted, no request folder left behind
    root = tmp_path / "work"
    result = score_upload(service, Settings(), texts, src, root=root)
    assert result.summary is None and result.scored_path is None
    assert result.message.startswith(texts.failed.split("{")[0]) and message in result.message
    assert not src.exists() and list(root.iterdir()) == []


# ---------------------------------------------------------------------------- partly bad files


def _latin1(tmp_path: Path) -> Path:
    rows = [["Jos\u00e9 M\u00fcller", *GOOD], ["Fran\u00e7oise", "drei\u00dfig", *GOOD[1:]], ["Bj\u00f6rk", *GOOD]]
    path = tmp_path / "latin1.csv"
    path.write_bytes(csv_bytes(rows, sep=";", header=["Name", *FIELD_NAMES], encoding="latin-1"))
    return path


def _bom_crlf(tmp_path: Path) -> Path:
    path = tmp_path / "bom_crlf.csv"
    path.write_bytes(csv_bytes([[7, *GOOD], [8, 250, *GOOD[1:]], [9, *GOOD]], encoding="utf-8-sig", newline="\r\n"))
    return path


def _numbers_as_text(tmp_path: Path) -> Path:
    rows = [[1, " 38 ", '71,000', "1.2e3", "+5", "7.0", "6", "14"],       # all fine as numbers
            [2, 38, "\u20ac71,000", *GOOD[2:]], [3, 38, "71k", *GOOD[2:]], [4, 38, "1e400", *GOOD[2:]],
            [5, 38, "0x10", *GOOD[2:]], [6, 38, 71000, "1200", "5 purchases", *GOOD[4:]], [7, *GOOD]]
    path = tmp_path / "text_numbers.csv"
    path.write_bytes(csv_bytes(rows))
    return path


def _negative_counts(tmp_path: Path) -> Path:
    rows = [[1, *GOOD], [2, 38, 71000, 1200, 5, -3, 6, 14], [3, 38, 71000, 1200, 5, 7, -1, 14],
            [4, 38, 71000, 1200, 5, 7, 6, -5], [5, 38, -100, -1200, 5, 7, 6, 14], [6, *GOOD]]
    path = tmp_path / "negatives.csv"
    path.write_bytes(csv_bytes(rows))
    return path


def _raw_negatives(tmp_path: Path) -> Path:
    return raw_file(tmp_path, "raw_negatives.csv", {(1, "NumStorePurchases"): -3, (3, "NumWebVisitsMonth"): -1,
                                                    (5, "Recency"): -5, (7, "MntGoldProds"): -10})


def _mixed_delimiters(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.csv"
    path.write_bytes(";".join(HEADER).encode() + b"\n1;38;71000;1200;5;7;6;14\n2,38,71000,1200,5,7,6,14\n"
                     b"3;40;20000;50;1;2;8;80\n")
    return path


def _nul_far_in(tmp_path: Path) -> Path:
    rows = [[i, *GOOD] for i in range(1, 400)] + [[400, 38, "71\x00000", *GOOD[2:]], [401, *GOOD]]
    path = tmp_path / "nul.csv"
    path.write_bytes(csv_bytes(rows))
    assert path.read_bytes().index(b"\x00") > 4096                  # past the binary sniffing
    return path


def _formulas(tmp_path: Path) -> Path:
    rows = [['=HYPERLINK("http://evil.example","x")', *GOOD], ["@SUM(1+1)*cmd|' /C calc'!A0", *GOOD],
            ["+cmd|' /C calc'!A0", *GOOD], ["-2+3", *GOOD], ["=1+1", 250, *GOOD[1:]], ["-42", *GOOD]]
    path = tmp_path / "formulas.csv"
    path.write_bytes(csv_bytes(rows))
    return path


# name -> (file maker, rows read, rows scored, {row: error}, delimiter of the input)
PARTLY_BAD = {
    "latin1_semicolons": (_latin1, 3, 2, {"2": "age='drei\u00dfig' is not a number"}, ";"),
    "utf8_bom_crlf": (_bom_crlf, 3, 2, {"2": "age=250 is above the maximum of 110"}, ","),
    "numbers_as_text": (_numbers_as_text, 7, 2, {
        "2": "income='\u20ac71,000' is in another currency (income is in $)", "3": "income='71k' is not a number",
        "4": "income=inf is not a finite number", "5": "income='0x10' is not a number",
        "6": "web_purchases='5 purchases' is not a number"}, ","),
    "negative_counts": (_negative_counts, 6, 2, {
        "2": "store_purchases=-3 is below the minimum of 0", "3": "web_visits_per_month=-1 is below the minimum of 0",
        "4": "recency_days=-5 is below the minimum of 0",
        "5": "income=-100 is below the minimum of 0; total_spending=-1200 is below the minimum of 0"}, ","),
    "raw_negative_counts": (_raw_negatives, 12, 8, {
        "2": "store_purchases=-3 is below the minimum of 0", "4": "web_visits_per_month=-1 is below the minimum of 0",
        "6": "recency_days=-5 is below the minimum of 0", "8": "MntGoldProds=-10 is below the minimum of 0"}, "\t"),
    "mixed_delimiters": (_mixed_delimiters, 3, 2, {
        "2": "has 1 value(s), expected 8 (is the delimiter semicolon right?)"}, ";"),
    "nul_far_into_the_file": (_nul_far_in, 401, 400, {"400": "income='71\\x00000' is not a number"}, ","),
    "formula_cells": (_formulas, 6, 5, {"5": "age=250 is above the maximum of 110"}, ","),
}


def _read(path: Path) -> pd.DataFrame:
    """An output (scored or errors file): comma-separated, whatever the input's delimiter."""
    return pd.read_csv(path, sep=",", dtype=str, keep_default_na=False)


def _check_outputs(scored: Path, errors: Path | None, case: str, service) -> None:
    _, read, n_scored, bad, _input_sep = PARTLY_BAD[case]
    out = _read(scored)
    assert len(out) == n_scored
    for _, row in out.iterrows():      # every scored row carries the model's answer for its values
        if "age" in out.columns:
            values = {n: row[n] for n in FIELD_NAMES}
            assert row["segment_key"] == service.label(parse_profile(values)), row.to_dict()
    errs = _read(errors)
    assert dict(zip(errs["row"], errs["error"])) == bad
    # nothing a spreadsheet would run, in either file
    for frame in (out, errs):
        for column in frame.columns:
            assert not column.startswith(("=", "+", "@")), column
            for cell in frame[column]:         # a plain number such as -5 or +5 stays a number
                assert not (cell[:1] in ("=", "@") or (cell[:1] in ("+", "-") and not _plain_number(cell))), cell


def _plain_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("case", list(PARTLY_BAD))
def test_good_rows_are_scored_and_the_rest_listed_everywhere(case, service, texts, tmp_path, capsys):
    make, read, n_scored, bad, sep = PARTLY_BAD[case]
    (tmp_path / "in").mkdir()
    src = make(tmp_path / "in")

    summary = score_file(service, src, tmp_path / "lib.csv")
    assert (summary.rows_read, summary.rows_scored, summary.rows_failed) == (read, n_scored, read - n_scored)
    _check_outputs(tmp_path / "lib.csv", Path(summary.errors_path), case, service)

    assert cli.main(["score", str(src), "-o", str(tmp_path / "cli.csv")]) == 0
    captured = capsys.readouterr()
    assert f"Scored {n_scored:,} of {read:,} rows" in captured.out
    assert f"{read - n_scored:,} row(s) could not be scored" in captured.out and "cli.errors.csv" in captured.out
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "lib.csv").read_bytes()

    result = score_upload(service, Settings(), texts, src, root=tmp_path / "work")
    assert not src.exists()                                            # the upload is deleted after use
    assert result.summary is not None and result.summary.rows_scored == n_scored
    assert f"**{n_scored:,}** of {read:,} rows scored" in result.message
    assert f"**{read - n_scored:,}** row(s) could not be scored" in result.message
    _check_outputs(result.scored_path, result.errors_path, case, service)


def test_the_utf8_bom_does_not_hide_the_id_column(service, tmp_path):
    src = _bom_crlf(tmp_path)
    score_file(service, src, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    assert out.columns[0] == "ID" and "row" not in out.columns and out["ID"].tolist() == ["7", "9"]


def test_latin1_text_comes_out_as_utf8(service, tmp_path):
    score_file(service, _latin1(tmp_path), tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, encoding="utf-8")
    assert out["Name"].tolist() == ["Jos\u00e9 M\u00fcller", "Bj\u00f6rk"]
    errors = pd.read_csv(tmp_path / "out.errors.csv", dtype=str, encoding="utf-8")
    assert errors["Name"].tolist() == ["Fran\u00e7oise"]


def test_a_decimal_comma_is_refused_with_the_rule_never_misread(service, tmp_path):
    """52000,50 is a decimal comma, not 5,200,050: the row goes to the errors file with the rule; commas that
    group thousands (71,000 and 1,200,000.5) still read as numbers."""
    path = tmp_path / "decimal_comma.csv"
    path.write_bytes(csv_bytes([[1, 38, "52000,50", "1200,5", 5, 7, 6, 14],
                                [2, 38, "71,000", "1,200.5", 5, 7, 6, 14]], sep=";"))
    summary = score_file(service, path, tmp_path / "out.csv")
    assert summary.rows_scored == 1
    errors = _read(tmp_path / "out.errors.csv")
    assert errors["row"].astype(int).tolist() == [1]
    assert "income='52000,50' has a comma that does not separate thousands" in errors["error"][0]
    scored = _read(tmp_path / "out.csv")
    expected = service.label(parse_profile({**dict(zip(FIELD_NAMES, GOOD)), "income": 71000,
                                            "total_spending": 1200.5}))
    assert scored["segment_key"].tolist() == [expected]


@pytest.mark.parametrize("text, number", [("71,000", 71000), ("1,234,567.5", 1234567.5), (" 52,000 ", 52000),
                                          ("52000", 52000), ("-1,000", None)])
def test_field_check_reads_only_thousands_commas(text, number):
    from assistant.core.fields import FIELDS_BY_NAME
    if number is None:
        with pytest.raises(InvalidValueError, match="below the minimum"):
            FIELDS_BY_NAME["income"].check(text)
    else:
        assert FIELDS_BY_NAME["income"].check(text) == number


@pytest.mark.parametrize("text", ["52000,50", "1,2", "12,34,567", ",5", "5,"])
def test_field_check_refuses_a_misplaced_comma(text):
    from assistant.core.fields import FIELDS_BY_NAME
    with pytest.raises(InvalidValueError, match=f"income='{text}' has a comma that does not separate thousands"):
        FIELDS_BY_NAME["income"].check(text)


# ---------------------------------------------------------------------------- files as spreadsheets and users write them

SPREADSHEET_HEADER = ["Customer ID", "Age (years)", "Income ($)", "Total Spending", "Web Purchases",
                      "In-store purchases", "Visits per month", "Days since last purchase"]


def _labels(service, rows: list[list]) -> list[str]:
    return [service.label(parse_profile(dict(zip(FIELD_NAMES, row)))) for row in rows]


@pytest.mark.parametrize("header", [
    SPREADSHEET_HEADER,
    ["customer_id", "Age, years", "Income in USD", "Total spending (last 2 years)", "# Web purchases",
     "Number of store purchases", "Web visits/month", "Recency [days]"],
    ["ID", "age_years", "Income", "MntTotal spent", "NumWebPurchases", "NumStorePurchases", "NumWebVisitsMonth",
     "Recency"],
])
def test_headers_with_units_and_spreadsheet_names_are_matched(header, service, texts, tmp_path, capsys):
    if header[3] == "MntTotal spent":
        header = [*header[:3], "Total spent", *header[4:]]
    src = tmp_path / "export.csv"
    src.write_bytes(csv_bytes([[1, *GOOD], [2, 60, 20000, 50, 1, 2, 8, 80]], header=header, encoding="utf-8-sig",
                              newline="\r\n"))
    summary = score_file(service, src, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored) == (2, 2)
    out = _read(tmp_path / "out.csv")
    assert out.columns[:8].tolist() == header and "row" not in out.columns       # the ID column is kept
    assert out["segment_key"].tolist() == _labels(service, [GOOD, [60, 20000, 50, 1, 2, 8, 80]])
    assert cli.main(["score", str(src), "-o", str(tmp_path / "cli.csv")]) == 0
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "out.csv").read_bytes()
    result = score_upload(service, Settings(), texts, src, root=tmp_path / "work")
    assert result.summary is not None and result.summary.rows_scored == 2


@pytest.mark.parametrize("id_name", ["Customer ID", "customer_id", "ID", "Client No.", "Account Number", "Member ID"])
def test_an_id_column_under_its_usual_names_replaces_the_row_column(id_name, service, tmp_path):
    src = tmp_path / "ids.csv"
    src.write_bytes(csv_bytes([["C-001", *GOOD]], header=[id_name, *SPREADSHEET_HEADER[1:]]))
    score_file(service, src, tmp_path / "out.csv")
    out = _read(tmp_path / "out.csv")
    assert out.columns[0] == id_name and "row" not in out.columns and out[id_name].tolist() == ["C-001"]


def test_a_unit_that_changes_the_numbers_is_not_taken_and_the_message_shows_the_columns(service, tmp_path):
    src = tmp_path / "k.csv"
    src.write_bytes(csv_bytes([[1, *GOOD]], header=[*SPREADSHEET_HEADER[:2], "Income (k$)", *SPREADSHEET_HEADER[3:]]))
    with pytest.raises(DataFileError, match=re.escape("missing column(s) for: income")) as info:
        score_file(service, src, tmp_path / "out.csv")
    assert "other columns: 'Customer ID', 'Income (k$)'" in str(info.value)


def test_a_specific_header_wins_over_a_generic_word(service, tmp_path):
    """A "Store" column (the branch) beside "In-store purchases": the purchases are the field."""
    src = tmp_path / "store.csv"
    src.write_bytes(csv_bytes([[1, "Berlin Mitte", *GOOD]], header=["ID", "Store", *SPREADSHEET_HEADER[1:]]))
    summary = score_file(service, src, tmp_path / "out.csv")
    assert summary.rows_scored == 1
    assert _read(tmp_path / "out.csv")["segment_key"].tolist() == _labels(service, [GOOD])


NUMBER_CASES = [
    # (income cell, total spending cell, web purchases cell, expected (income, spending, web) or error)
    ("71 000", "1200", "5", (71000, 1200, 5)),
    ("71\u00a0000", "1\u202f200", "5", (71000, 1200, 5)),
    ("71'000", "1200", "5", (71000, 1200, 5)),
    ("1.234.567", "1200", "5", (1234567, 1200, 5)),
    ("$71,000", "$1,200.50", "5", (71000, 1200.5, 5)),
    ("71000 $", "USD 1200", "5", (71000, 1200, 5)),
    ("71000", "1200", "5.000", (71000, 1200, 5)),          # 5,000 purchases is out of range: the dot is decimal
    ("71.000", "1200", "5", "income='71.000' is ambiguous: the dot may separate thousands or decimals"),
    ("71000", "1.200", "5", "total_spending='1.200' is ambiguous"),
    ("71000", "1200", "1.000", "web_purchases='1.000' is ambiguous"),
    ("5.000,50", "1200", "5", "income='5.000,50' has a comma that does not separate thousands"),
    ("1 234,56", "1200", "5", "income='1 234,56' has a comma that does not separate thousands"),
    ("\u20ac71,000", "1200", "5", "income='\u20ac71,000' is in another currency (income is in $)"),
    ("71000", "1200", "$5", "web_purchases='$5' is not a number"),
    ("71000", "12%", "5", "total_spending='12%' is a percentage (total_spending is in $)"),
]


@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("typed", [False, True], ids=["text-column", "all-numeric-column"])
def test_thousands_separators_currency_and_ambiguous_dots(sep, typed, service, tmp_path):
    """Each case alone in a file (typed: the column otherwise holds plain numbers, so it takes the fast cast
    path) or all together (every column has text, so the slow path reads it): same results."""
    cases = NUMBER_CASES if not typed else [c for c in NUMBER_CASES if re.fullmatch(r"[\d.]+", c[0] + c[1] + c[2])]
    rows = [[i + 1, 38, income, spend, web, 7, 6, 14] for i, (income, spend, web, _) in enumerate(cases)]
    if typed:
        rows.append([len(rows) + 1, *GOOD])
    src = tmp_path / "numbers.csv"
    src.write_bytes(csv_bytes(rows, sep=sep))
    summary = score_file(service, src, tmp_path / "out.csv")
    expected_errors = {str(i + 1): c[3] for i, c in enumerate(cases) if isinstance(c[3], str)}
    expected_good = [[38, *c[3][:2], c[3][2], 7, 6, 14] for c in cases if not isinstance(c[3], str)]
    if typed:
        expected_good.append(GOOD)
    assert summary.rows_read == summary.rows_scored + summary.rows_failed == len(rows)
    assert summary.rows_failed == len(expected_errors)
    if expected_errors:
        errors = _read(tmp_path / "out.errors.csv")
        for row, error in zip(errors["row"], errors["error"]):
            assert expected_errors[row] in error
        assert set(errors["row"]) == set(expected_errors)
    out = _read(tmp_path / "out.csv")
    assert out["segment_key"].tolist() == _labels(service, expected_good)
    for income, spend, web, expected in cases:      # the single-customer rules say the same
        for name, cell in (("income", income), ("total_spending", spend), ("web_purchases", web)):
            from assistant.core.fields import FIELDS_BY_NAME
            if isinstance(expected, str) and expected.startswith(f"{name}="):
                with pytest.raises(InvalidValueError, match=re.escape(expected)):
                    FIELDS_BY_NAME[name].check(cell)
            elif not isinstance(expected, str):
                FIELDS_BY_NAME[name].check(cell)


@pytest.mark.parametrize("quoted_break", [False, True], ids=["arrow-reader", "python-reader"])
def test_rows_of_empty_cells_are_blank_lines(quoted_break, service, tmp_path):
    """Spreadsheets write ``;;;;;;;`` rows below (or between) the data: they are blank lines, not failed rows."""
    name = 'Ann "the\nfirst"' if quoted_break else "Ann"
    text = csv_bytes([[name, *GOOD], [""] * 8, ["Bob", *GOOD], [""] * 8, [""] * 8],
                     header=["Name", *FIELD_NAMES], sep=";", newline="\r\n")
    src = tmp_path / "excel.csv"
    src.write_bytes(text)
    summary = score_file(service, src, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored, summary.rows_failed) == (2, 2, 0)
    assert _read(tmp_path / "out.csv")["row"].tolist() == ["1", "2"]


@pytest.mark.parametrize("preamble", ["# exported from the CRM on 2024-05-01\n", "Customer list\n\n",
                                      "Customers, May 2024\n# rows: 2\n", '"Customers, May 2024",,,,,,,\r\n,,,,,,,\r\n'])
def test_a_title_or_comment_line_above_the_header_is_skipped(preamble, service, tmp_path):
    src = tmp_path / "titled.csv"
    src.write_bytes(preamble.encode() + csv_bytes([[1, *GOOD], [2, 250, *GOOD[1:]]]))
    summary = score_file(service, src, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored) == (2, 1)
    assert _read(tmp_path / "out.errors.csv")["row"].tolist() == ["2"]
    lines = src.read_bytes().split(b"\n")                          # the python reader agrees
    quoted = src.with_name("quoted.csv")
    quoted.write_bytes(b"\n".join(lines[:-2] + [b'"1\n",' + b",".join(str(v).encode() for v in GOOD), b""]))
    summary = score_file(service, quoted, tmp_path / "out2.csv")
    assert (summary.rows_read, summary.rows_scored) == (2, 2)


def test_a_file_without_any_header_still_names_the_first_line(service, tmp_path):
    src = tmp_path / "noheader.csv"
    src.write_bytes(b"1,38,71000,1200,5,7,6,14\n2,38,71000,1200,5,7,6,14\n")
    with pytest.raises(DataFileError, match="missing column"):
        score_file(service, src, tmp_path / "out.csv")


@pytest.mark.parametrize("date_format", ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%d-%b-%Y", "%b %d, %Y"])
def test_raw_dates_in_other_formats_give_the_collection_year(date_format, service, tmp_path):
    frame = generate_customers(12, seed=31, quirks=False)
    src = write_customers(frame, tmp_path / "raw.csv", delimiter=",", date_format=date_format)
    summary = score_file(service, src, tmp_path / "out.csv")
    reference = score_file(service, write_customers(frame, tmp_path / "ref.csv"), tmp_path / "ref_out.csv")
    assert summary.collection_year == reference.collection_year
    assert summary.rows_scored == reference.rows_scored == 12
    assert _read(tmp_path / "out.csv")["segment_key"].tolist() == \
        _read(tmp_path / "ref_out.csv")["segment_key"].tolist()


def test_two_digit_years_are_refused_with_the_formats_named(service, tmp_path):
    src = write_customers(generate_customers(5, seed=3, quirks=False), tmp_path / "raw.csv", date_format="%d/%m/%y")
    with pytest.raises(DataFileError, match="Dt_Customer has no dates in a known format .* 4-digit year"):
        score_file(service, src, tmp_path / "out.csv")


def test_raw_age_errors_name_the_birth_year(service, tmp_path):
    src = raw_file(tmp_path, "raw_years.csv", {(1, "Year_Birth"): 1893, (2, "Year_Birth"): 2030,
                                               (3, "Year_Birth"): 57, (4, "Year_Birth"): "1.957"})
    summary = score_file(service, src, tmp_path / "out.csv")
    year = summary.collection_year
    errors = dict(zip(*_read(tmp_path / "out.errors.csv")[["row", "error"]].T.values))
    assert errors["2"] == f"age={year - 1893} is above the maximum of 110 (age = {year} - Year_Birth=1893)"
    assert errors["3"] == f"age={year - 2030} is below the minimum of 18 (age = {year} - Year_Birth=2030)"
    assert errors["4"] == f"age={year - 57} is above the maximum of 110 (age = {year} - Year_Birth=57)"
    assert errors["5"].startswith("Year_Birth='1.957' is ambiguous")
    assert summary.rows_scored == 8


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_excel_unicode_text_utf16_is_read(encoding, service, texts, tmp_path, capsys):
    """Excel's "Unicode Text" export: tab-separated UTF-16 with a byte-order mark; outputs are UTF-8."""
    rows = [["Jos\u00e9 M\u00fcller", *GOOD], ["Ragged", 38, 71000], ["Zo\u00eb", 250, *GOOD[1:]], ["end", *GOOD]]
    content = csv_bytes(rows, header=["Name", *SPREADSHEET_HEADER[1:]], sep="\t", newline="\r\n", encoding="utf-8")
    src = tmp_path / "unicode.txt"
    src.write_bytes((b"\xfe\xff" if encoding == "utf-16-be" else b"") + content.decode().encode(encoding))
    summary = score_file(service, src, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored) == (4, 2)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, encoding="utf-8")
    assert out["Name"].tolist() == ["Jos\u00e9 M\u00fcller", "end"]
    assert out["segment_key"].tolist() == _labels(service, [GOOD, GOOD])
    errors = _read(tmp_path / "out.errors.csv")
    assert errors["row"].tolist() == ["2", "3"] and errors["error"][1] == "age=250 is above the maximum of 110"
    assert cli.main(["score", str(src), "-o", str(tmp_path / "cli.csv")]) == 0
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "out.csv").read_bytes()
    assert score_upload(service, Settings(), texts, src, root=tmp_path / "work").summary.rows_scored == 2


def test_parquet_list_and_struct_columns_are_written_to_csv_as_json(service, tmp_path):
    frame = pd.DataFrame([dict(zip(FIELD_NAMES, GOOD)), dict(zip(FIELD_NAMES, [250, *GOOD[1:]]))])
    frame.insert(0, "ID", [1, 2])
    frame["tags"] = [["a", "b"], []]
    frame["address"] = [{"city": "Oslo", "zip": "0150"}, None]
    frame.to_parquet(tmp_path / "nested.parquet", index=False)
    summary = score_file(service, tmp_path / "nested.parquet", tmp_path / "out.csv")
    assert (summary.rows_scored, summary.rows_failed) == (1, 1)
    out = _read(tmp_path / "out.csv")
    assert out["tags"].tolist() == ['["a", "b"]'] and out["address"].tolist() == ['{"city": "Oslo", "zip": "0150"}']
    assert _read(tmp_path / "out.errors.csv")["tags"].tolist() == ["[]"]
    score_file(service, tmp_path / "nested.parquet", tmp_path / "out.parquet")       # Parquet keeps the types
    assert pd.read_parquet(tmp_path / "out.parquet")["tags"].tolist()[0].tolist() == ["a", "b"]


# ---------------------------------------------------------------------------- size limit


def test_a_200_mb_upload_is_refused_by_the_handler_without_reading_it(service, texts, tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:                 # sparse: 200 MB long, no disk used
        fh.truncate(200 * MB)
    assert big.stat().st_size == 200 * MB
    started = time.perf_counter()
    result = score_upload(service, Settings(), texts, big, root=tmp_path / "work")
    assert time.perf_counter() - started < 1.0
    assert result.summary is None
    assert result.message == texts.too_large.format(size_mb=200.0, limit_mb=Settings().max_upload_bytes / MB)
    assert "200.0 MB" in result.message and "50.0 MB" in result.message
    assert not big.exists() and not (tmp_path / "work").exists()


def _read_response(sock: socket.socket) -> str:
    """Headers and body of one HTTP response (they may arrive in separate packets)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


@pytest.mark.slow
def test_a_200_mb_upload_is_refused_by_the_server_before_it_is_sent(service):
    """Content-Length says 200 MB: 413 at once (only the headers travel), and the server keeps serving.
    Without Content-Length (chunked), the body is cut off as soon as it passes the limit."""
    app = create_app(Settings(max_upload_bytes=2 * MB), service=service)
    with serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.perf_counter()
            sock.sendall(b"POST /gradio_api/upload HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: multipart/form-data; boundary=zz\r\n"
                         + f"Content-Length: {200 * MB}\r\n\r\n".encode() + b"--zz\r\n")
            answer = _read_response(sock)
            assert time.perf_counter() - started < 2.0
        assert answer.startswith("HTTP/1.1 413")
        assert f"the request body is {200 * MB:,} bytes, above the limit of {2 * MB:,}" in answer

        sent = [0]

        def stream():
            yield b'--zz\r\nContent-Disposition: form-data; name="files"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n'
            for _ in range(400):                # 8 MB in 20 KB pieces
                sent[0] += 20_000
                yield b"a,b\n" * 5000

        with httpx.Client(base_url=base, timeout=30, trust_env=False) as http:
            r = http.post("/gradio_api/upload", content=stream(),
                          headers={"content-type": "multipart/form-data; boundary=zz"})
            assert r.status_code == 413 and "above the limit of 2,097,152 bytes" in r.json()["detail"][0]
            assert http.get("/healthz").status_code == 200
            ok = http.post("/gradio_api/upload", files={"files": ("small.csv", csv_bytes([[1, *GOOD]]))})
            assert ok.status_code == 200                                # a file under the limit still goes in


# ---------------------------------------------------------------------------- the served upload path and cleanup


def _score_through_the_app(http: httpx.Client, content: bytes, name: str) -> tuple[str, list]:
    up = http.post("/gradio_api/upload", files={"files": (name, content, "text/csv")})
    assert up.status_code == 200, up.text
    uploaded = up.json()[0]
    r = http.post("/gradio_api/call/score_file", json={"data": [{"path": uploaded, "orig_name": name,
                                                                  "meta": {"_type": "gradio.FileData"}}]})
    assert r.status_code == 200, r.text
    event, data = sse_result(http.get(f"/gradio_api/call/score_file/{r.json()['event_id']}").text)
    assert event == "complete", data
    return uploaded, data


@pytest.mark.slow
def test_uploads_and_downloads_are_deleted_after_use_in_the_served_app(tmp_path, texts):
    """A real server (its own temp folders): each upload is deleted once scored or refused; request
    folders older than the TTL go at the next request; on shutdown Gradio deletes its copies."""
    temp, gradio_temp = tmp_path / "tmp", tmp_path / "gradio"
    temp.mkdir()
    work = temp / "segment-assistant-batch"
    stale = work / "req-stale"
    stale.mkdir(parents=True)
    (stale / "old-scored.csv").write_text("ID,segment_key\n1,vip_customers\n")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    with ServerProcess(env={"TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(gradio_temp)}) as server:
        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as http:
            good = csv_bytes([[1, *GOOD], [2, 250, *GOOD[1:]], [3, *GOOD]])
            uploaded, data = _score_through_the_app(http, good, "customers.csv")
            assert not Path(uploaded).exists()                          # the upload went right after scoring
            assert not stale.exists()                                   # the stale request folder went too
            assert "**2** of 3 rows scored" in data[0]
            download = http.get(f"/gradio_api/file={scored_file_path(data)}")
            assert download.status_code == 200 and "segment_key" in download.text
            requests = list(work.rglob("req-*"))
            assert len(requests) == 1 and {p.name for p in requests[0].iterdir()} == {
                "customers-scored.csv", "customers-errors.csv"}

            uploaded, data = _score_through_the_app(http, REFUSED["binary_junk"][0], "junk.csv")
            assert not Path(uploaded).exists()
            assert data[0].startswith(texts.failed.split("{")[0]) and "is not a text file" in data[0]
            assert len(list(work.rglob("req-*"))) == 1                  # a refused file leaves no folder
        server.stop()
    # on shutdown Gradio deletes its copies of uploads and downloads; what stays is the app's own model
    # plots and empty temporary files (no customer data)
    left = [p for p in gradio_temp.rglob("*") if p.is_file() and p.stat().st_size and p.suffix != ".png"]
    assert left == [], f"Gradio's cache still holds {left}"


@pytest.mark.slow
def test_no_scored_customer_file_outlives_the_server(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    with ServerProcess(env={"TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}) as server:
        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as http:
            _score_through_the_app(http, csv_bytes([[1, *GOOD]]), "customers.csv")
        server.stop()
    assert server.proc.returncode in (0, -15)           # uvicorn re-raises SIGTERM after its graceful shutdown
    left = [p.name for p in (temp / "segment-assistant-batch").rglob("*.csv")]
    assert left == [], f"customer files left in the temp folder after shutdown: {left}"
