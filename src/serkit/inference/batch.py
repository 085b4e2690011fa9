"""Batch prediction, engine-neutral: many files → results → Arrow tables → Parquet.

Both ``serkit predict`` engines use these, so the local path and Ray
(:mod:`serkit.inference.distributed`) give the same rows:

* :func:`predict_paths` runs a :class:`~serkit.inference.predictor.Predictor` over files
  (``predict_files``, or ``predict_long`` per file with ``timeline``); a file that cannot be read
  gets ``error`` / ``kind`` and the others go on.
* :func:`results_table` flattens results into one row per file (the fields of the JSON schema:
  ``path, label, confidence, duration, speech, note, error, kind`` and one ``prob_<class>`` column
  per class, as in the CSV output). With ``timeline`` there is also one row per segment, and the
  columns ``level`` (``file`` / ``segment``), ``start`` and ``end`` (null on file rows).
* :class:`ParquetSink` writes such tables to ``OUT.parquet`` as they come, and the failed files
  (``path, error, kind``) to ``OUT.failed.parquet`` (always written, empty when none failed).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from serkit.io.audio import AudioError

__all__ = ["FAILED_SCHEMA_FIELDS", "ParquetSink", "failed_path", "predict_paths", "result_schema",
           "results_table"]

FAILED_SCHEMA_FIELDS = ("path", "error", "kind")
_FILE_FIELDS = ("label", "confidence", "duration", "speech", "note", "error", "kind")


def predict_paths(predictor, paths: Sequence[str], *, timeline: bool = False, batch_size: int = 16,
                  progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Results of ``paths`` in input order (the shared schema; with ``timeline`` each has ``segments``)."""
    if not timeline:
        return predictor.predict_files(paths, batch_size=batch_size, progress=progress)
    out = []
    for f in paths:
        try:
            out.append({"path": f, **predictor.predict_long(f)})
        except AudioError as exc:
            out.append({"path": f, "error": str(exc), "kind": exc.kind})
        if progress:
            progress(1)
    return out


def result_schema(classes: Sequence[str], timeline: bool = False):
    """The Arrow schema of :func:`results_table` for a model with ``classes``."""
    import pyarrow as pa

    cols = [pa.field("path", pa.string())]
    if timeline:
        cols += [pa.field("level", pa.string()), pa.field("start", pa.float64()), pa.field("end", pa.float64())]
    cols += [pa.field("label", pa.string()), pa.field("confidence", pa.float64()),
             pa.field("duration", pa.float64()), pa.field("speech", pa.bool_()),
             pa.field("note", pa.string()), pa.field("error", pa.string()), pa.field("kind", pa.string())]
    cols += [pa.field(f"prob_{c}", pa.float64()) for c in classes]
    return pa.schema(cols)


def _row(r: dict[str, Any], classes: Sequence[str], **extra) -> dict[str, Any]:
    row = {"path": r.get("path"), **extra, **{k: r.get(k) for k in _FILE_FIELDS}}
    scores = r.get("scores") or {}
    row.update({f"prob_{c}": scores.get(c) for c in classes})
    return row


def results_table(results: Sequence[dict[str, Any]], classes: Sequence[str], timeline: bool = False,
                  extra: dict[str, Sequence] | None = None):
    """Results as a :class:`pyarrow.Table` (see the module doc); ``extra`` columns are appended,
    one value per file repeated on its segment rows."""
    import pyarrow as pa

    rows, owner = [], []
    for i, r in enumerate(results):
        if not timeline:
            rows.append(_row(r, classes))
            owner.append(i)
            continue
        rows.append(_row(r, classes, level="file", start=None, end=None))
        owner.append(i)
        for s in r.get("segments") or []:
            seg = {**s, "path": r.get("path"), "duration": round(s["end"] - s["start"], 3),
                   "speech": s.get("label") is not None}
            rows.append(_row(seg, classes, level="segment", start=s["start"], end=s["end"]))
            owner.append(i)
    schema = result_schema(classes, timeline)
    table = pa.Table.from_pylist(rows, schema=schema)
    for name, values in (extra or {}).items():
        table = table.append_column(name, pa.array([values[i] for i in owner]))
    return table


def failed_path(out: str | Path) -> Path:
    """``results.parquet`` → ``results.failed.parquet``."""
    out = Path(out)
    return out.with_name(out.stem + ".failed" + (out.suffix or ".parquet"))


class ParquetSink:
    """Writes result tables to ``out`` and the failed files to :func:`failed_path` as they come.

    Use as a context manager; ``files``, ``rows`` and ``failed`` count what was written."""

    def __init__(self, out: str | Path, classes: Sequence[str], timeline: bool = False):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.out, self.failed_out = Path(out), failed_path(out)
        self.timeline = timeline
        self.schema = result_schema(classes, timeline)
        self.failed_schema = pa.schema([pa.field(k, pa.string()) for k in FAILED_SCHEMA_FIELDS])
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._main = pq.ParquetWriter(str(self.out), self.schema)
        self._failed = pq.ParquetWriter(str(self.failed_out), self.failed_schema)
        self.files = self.rows = self.failed = 0

    def write(self, table) -> None:
        import pyarrow.compute as pc

        table = table.select(self.schema.names).cast(self.schema)
        self._main.write_table(table)
        is_file = pc.equal(table["level"], "file") if self.timeline else None
        bad = pc.is_valid(table["error"])
        if is_file is not None:
            bad = pc.and_(bad, is_file)
        failed = table.filter(bad).select(list(FAILED_SCHEMA_FIELDS)).cast(self.failed_schema)
        if failed.num_rows:
            self._failed.write_table(failed)
        self.rows += table.num_rows
        self.files += table.num_rows if is_file is None else int(pc.sum(is_file).as_py() or 0)
        self.failed += failed.num_rows

    def close(self) -> None:
        self._main.close()
        self._failed.close()

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
