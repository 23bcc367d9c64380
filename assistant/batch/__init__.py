"""Batch scoring of customer files (CSV or Parquet), streamed chunk by chunk with bounded memory.

Input formats (detected from the header, see :func:`inspect_file`):

* **raw**: the marketing file's columns (``Year_Birth``, ``Income``, ``Dt_Customer``, ``Mnt*``,
  ``Num*``, ``Recency``...). The seven fields are derived with :func:`assistant.model.data.derive_fields`,
  the same function training uses. ``age`` is computed against the **year of the latest
  Dt_Customer in the file being scored** (pass ``collection_year=`` to override). That is the
  honest choice: it is when that file's spending and recency were measured, and it is how the
  training file was prepared; the model card's year (2014) only describes the training file.
  A row whose own Dt_Customer does not parse is still scored (the date is not a model input).
* **fields**: one column per field. Headers match case-insensitively, ignoring spaces and
  punctuation, by field name, label, synonym or :data:`HEADER_ALIASES` (``Age``, ``Total Spending``,
  ``online purchases``, ``Recency``, ``NumWebPurchases``...), and ignoring units that do not change
  the numbers (``Age (years)``, ``Income ($)``, ``Income in USD``, ``# Web purchases``); ``Income (k$)``
  is not taken. A synonym shared by two fields matches neither; when two columns give one field the
  more specific header wins (``Store purchases`` over ``Store``), else the file is refused.

CSV files may be tab, semicolon or comma separated (detected from the header line, as in
:mod:`assistant.model.data`) and UTF-8 (with or without BOM), Windows-1252 or Latin-1. The header is the
first non-blank line, or the first of the next lines whose columns match (title and ``#`` comment
lines above it are skipped); rows whose every cell is empty (``;;;;``) count as blank lines. Parquet files are
recognised by their suffix or magic bytes.

Every row is validated with :meth:`FieldSpec.check` semantics, vectorised: a missing value, text
that is not a number, a non-finite number, a value out of range or a fraction in a whole-number
field makes the row fail. Numbers written as text (``" 38 "``, ``"1,200"``, ``71 000``, ``$71,000``
in a $ field) are accepted; text that could be misread is refused with its rule (see
:meth:`FieldSpec.number_from_text`: a decimal comma, ``71.000`` when 71 and 71,000 both fit the
field, another currency, a percentage). The check for ``71.000`` in columns that cast cleanly is a
few numpy comparisons (values between 1 and max/1000 whose text is exactly ``a.bcd`` long), so
the common path gets no regex. In raw
files each spending column must also be >= 0. Rows that fail go to the errors file with their
row number and every problem (``age=250 is above the maximum of 110; income is missing``); the
other rows are scored; the summary counts rows read, scored and failed.

**Row numbers** are 1-based data rows: the header is not counted and blank lines are skipped, so
in a file without blank lines or multi-line cells row N is line N + 1.

Output: the input's columns (CSV columns are copied verbatim as text; Parquet columns keep their
types, and a CSV written as Parquet gives the columns the fields come from as numbers: int64 for
whole-number fields and birth years, float64 for money), then ``segment_key``, ``segment_name``,
``confidence`` (clear/borderline), ``confidence_margin`` (rounded to 4 decimals) and ``warnings`` (the
chat's out-of-training-range warnings, e.g. for the 666,666 income placeholder; empty when none).
Columns of those names already in the input are replaced. When the input has no ID column a ``row``
column (the row number) comes first, so every output row can be tied back to its input row. A CSV
output is what its name says: tab-separated for ``.tsv``/``.tab``, else comma-separated, quoted only
where a block of rows needs it. The errors file is always comma CSV (``row``, ``error``, then the
input's columns) named after the output (``out.csv`` -> ``out.errors.csv``, ``out.parquet`` ->
``out.parquet.errors.csv``), and is written only when some row failed; a stale one from an earlier
run at the same path is removed.

Formula injection: in CSV outputs, text cells (and header names) that begin with ``=``, ``+``,
``-``, ``@``, tab or carriage return are prefixed with a single quote, unless the cell is a plain
number such as ``-5`` or ``+1,200`` (Excel reads those as numbers; anything else after such a
sign, like ``-1+2``, would be a formula). Typed numeric columns are never touched. Parquet outputs
are not rewritten.

Writes are atomic: output and errors file go to temporary files in the destination folder and
are renamed into place at the very end, so a failed or interrupted run leaves any previous output
intact. Reading is streamed (pyarrow's CSV reader, or Parquet row batches) and scoring uses
``service.score_array`` (one matrix product per chunk). Odd CSV files (rows with a wrong number
of values, quoted line breaks) fall back to Python's csv module, which also reports each ragged
row in the errors file.
"""
