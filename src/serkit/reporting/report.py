"""One self-contained HTML report per run directory.

:func:`write_report` reads a run directory (:mod:`.run`; format ``docs/ARCHITECTURE.md``),
recomputes the analyses from ``predictions.csv`` and the per-fold files (:mod:`.analysis`,
:mod:`.artifacts`), and writes ``RUN_DIR/report.html`` (figures embedded as base64 PNG,
inline CSS, no external resources) and the data behind every figure into
``RUN_DIR/report_data/``. The sections are rendered by :mod:`.header`, :mod:`.results`
and :mod:`.model_views`.

Only what is there is shown: a run with just ``predictions.csv`` and ``metrics.json``
renders, with a short note where a section has no input.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from . import analysis as A
from . import html as H
from .context import ReportContext
from .header import header, skipped_section, timing_section
from .model_views import attention_section, embedding_sections, gradcam_section, training_section
from .results import calibration_section, confusion_section, metrics_section, per_class_section, roc_pr_section
from .run import clean_nan, load_run, run_summary

__all__ = ["write_report"]


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, tsne: bool = True, seed: int | None = None) -> Path:
    """Write a self-contained HTML report of a run directory.

    Parameters
    ----------
    run_dir
        A run directory written by ``serkit run`` (``docs/ARCHITECTURE.md``).
    out
        Path of the HTML file; default ``RUN_DIR/report.html``.
    tsne
        Compute the t-SNE map (the slowest part; PCA is always drawn).
    seed
        Seed of subsampling and t-SNE; default the run's seed, else 0.

    Returns
    -------
    Path
        The HTML file. The data behind every figure is in ``RUN_DIR/report_data/``.

    Raises
    ------
    FileNotFoundError
        ``run_dir`` is not a directory with a metrics.json.
    serkit.reporting.schema.RunFormatError
        metrics.json is in a schema version this serkit does not read.
    """
    run = load_run(run_dir)
    out_path = Path(out) if out is not None else run.path / "report.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if seed is None:
        try:
            seed = int(run.meta("seed"))
        except (TypeError, ValueError):
            seed = 0
    ctx = ReportContext(run, out_path, seed, tsne)
    summary = run_summary(run)

    pooled, per_fold_class = A.per_class(run)
    roc, pr, roc_df, pr_df = A.roc_pr(run)
    emb_html, act_html = embedding_sections(ctx)
    sections = [
        ("metrics", "Metrics", metrics_section(ctx, summary)),
        ("skipped", "Skipped inputs", skipped_section(ctx)),
        ("per-class", "Per-class results", per_class_section(ctx, pooled, per_fold_class, roc, pr)),
        ("confusion", "Confusion matrix", confusion_section(ctx)),
        ("roc-pr", "ROC and precision–recall curves", roc_pr_section(ctx, roc, pr, roc_df, pr_df)),
        ("calibration", "Calibration", calibration_section(ctx)),
        ("training", "Training curves", training_section(ctx)),
        ("embeddings", "Embedding maps", emb_html),
        ("activations", "Activations and feature variance", act_html),
        ("attention", "Attention pooling", attention_section(ctx)),
        ("gradcam", "Grad-CAM", gradcam_section(ctx)),
        ("timing", "Run time", timing_section(ctx)),
    ]
    record = {k: v for k, v in summary.items() if k != "corpora_key"}
    ctx.json("summary.json", clean_nan({**record, "figures": ctx.n_images, "data_files": list(ctx.written)}))
    body = header(ctx, summary)
    body += H.toc([(a, t) for a, t, _ in sections])
    body += "".join(H.section(a, t, c) for a, t, c in sections)
    files = ", ".join(f'<a href="{H.esc(ctx.rel)}/{H.esc(n)}">{H.esc(n)}</a>' for n in ctx.written)
    from serkit import __version__

    footer = (
        f"Written by serkit {H.esc(__version__)} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
        f"Data behind the figures (in {H.esc(ctx.rel)}/): {files}."
    )
    out_path.write_text(H.page(f"serkit report — {summary['name']}", body, footer), encoding="utf-8")
    return out_path
