"""``serkit robustness``: UA of a model (or of a run's fold models) under degraded audio. It only
wraps :mod:`serkit.evaluation.robustness` (and the Predictor)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from serkit.cli.recognise import SEGMENT_HELP, _segments  # noqa: E402

console = Console()
err = Console(stderr=True)

CORPUS_HELP = ("labelled clips to score, as ADAPTER:PATH (emodb:/data/emodb, ravdess:..., csv:clips.csv "
               "with path,label,speaker columns, folder:DIR with a folder per label) or a CSV file; "
               "repeat for several corpora (babble then comes from the other corpora). Relative paths "
               "that do not exist are looked up under $SERKIT_DATA")


def _fail(msg: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(msg)}")
    raise typer.Exit(code)


def parse_corpus(spec: str) -> tuple[str, Path, dict[str, Any]]:
    """``ADAPTER:PATH`` (or a CSV file) -> ``(adapter, root, options)``."""
    import os

    from serkit.config import DataConfig
    from serkit.corpora import CORPORA

    name, sep, root = spec.partition(":")
    if not sep or name.lower() not in CORPORA:
        if spec.lower().endswith(".csv"):
            name, root = "csv", spec
        else:
            _fail(f"--corpus {spec!r}: give ADAPTER:PATH with ADAPTER one of {', '.join(sorted(CORPORA))} "
                  "(or a CSV file with path,label,speaker columns)")
    p = Path(os.path.expanduser(root))
    if not p.exists() and not p.is_absolute():
        p = Path(os.path.expandvars(os.path.expanduser(DataConfig().data_dir))) / p
    if not p.exists():
        _fail(f"--corpus {spec!r}: {root} does not exist")
    return name.lower(), p, {}


def robustness_table(record: dict[str, Any]) -> Table:
    from serkit.evaluation.robustness import TARGETS, table_cells

    name = record.get("model") or record.get("name") or "model"
    title = f"{name}: UA under degraded audio, {record['n_clips']} clips, seed {record['seed']}"
    if record.get("warning"):
        ov = record.get("overlap") or {}
        title += (f"\n[bold yellow]WARNING: {record['warning']}[/] ({ov.get('clips')} of {ov.get('of_clips')} "
                  f"clips, {ov.get('speakers')} speaker(s) of {', '.join(ov.get('corpora', []))}, by "
                  f"{ov.get('by')})")
    t = Table(title=title)
    head, body = table_cells(record["rows"], TARGETS,
                             lambda text, met: f"[green]{text}[/]" if met else f"[red]{text}[/]")
    for col in head:
        t.add_column(col, justify="left" if col == "condition" else "right")
    for cells in body:
        t.add_row(*cells)
    return t


def robustness(target: str = typer.Argument(..., help="installed model name, model directory, or a finished "
                                                      "`serkit run` directory (its fold models)"),
               corpus: Optional[List[str]] = typer.Option(None, "--corpus", "-c", help=CORPUS_HELP),
               per_corpus: int = typer.Option(30, "--per-corpus", min=0,
                                              help="clips per corpus, spread over its labels (0: all)"),
               conditions: Optional[List[str]] = typer.Option(
                   None, "--conditions", "-C", help="conditions to score, comma-separated or repeated "
                                                    "(default: all; `serkit robustness --list` names them)"),
               seed: int = typer.Option(42, "--seed", help="subset, noise, babble talkers, crops, rooms"),
               out: Optional[Path] = typer.Option(None, "--out", help="write the table as Markdown (and "
                                                  "the record as JSON beside it, .json)"),
               threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all cores)"),
               runtime: str = typer.Option("auto", "--runtime", help="auto, torch or onnx (as serkit predict)"),
               segment: Optional[List[str]] = typer.Option(None, "--segment", "-s", help=SEGMENT_HELP),
               talkers: int = typer.Option(4, "--babble-talkers", min=1, help="talkers mixed into babble"),
               cache: Optional[Path] = typer.Option(None, "--cache", help="run directories: where degraded "
                                                    "features are cached (default: the feature cache)"),
               list_conditions: bool = typer.Option(False, "--list", help="list the conditions and exit"),
               quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """UA per condition (noise at 20/10/0 dB SNR, telephone band, Opus, gain, clipping, crops,
    reverberation) of a model on labelled clips, or of a run's fold models on its test folds."""
    from serkit.evaluation.degrade import CONDITIONS
    from serkit.evaluation.robustness import is_run_dir, order_conditions, write_report

    if list_conditions:
        for name, (func, kw) in CONDITIONS.items():
            console.print(f"{name:18s} {func.__name__}({', '.join(f'{k}={v}' for k, v in kw.items())})",
                          markup=False)
        return
    wanted = [c.strip() for item in (conditions or []) for c in item.split(",") if c.strip()]
    if not wanted or wanted == ["all"]:
        wanted = list(CONDITIONS)
    try:
        order_conditions(wanted)
    except ValueError as exc:
        _fail(str(exc))

    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=True)
    with bar:
        task = bar.add_task("scoring clip × condition", total=None)
        hooks = {"progress": lambda n: bar.advance(task, n), "total": lambda n: bar.update(task, total=n)}
        if is_run_dir(Path(target)):
            record = _score_run(Path(target), corpus, wanted, seed, per_corpus, cache, talkers, hooks)
        else:
            record = _score_model(target, corpus, wanted, seed, per_corpus, threads, runtime, talkers, hooks,
                                  segment)
    console.print(robustness_table(record))
    for why, n in (record.get("left_out") or {}).items():
        console.print(f"[dim]left out: {n} clip(s): {escape(why)}[/]")
    if record.get("skipped"):
        err.print(f"[yellow]{len(record['skipped'])} file(s) skipped:[/]")
        for s in record["skipped"]:
            err.print(f"  {escape(s['path'])}: {escape(s['error'])}", soft_wrap=True)
    if out is not None:
        md, js = write_report(record, out)
        console.print(f"written: {md} and {js}")


def _score_run(run_dir: Path, corpus, wanted, seed, per_corpus, cache, talkers, hooks) -> dict[str, Any]:
    from serkit.evaluation.robustness import score_run

    if corpus:
        _fail("a run directory is scored on its own test folds (each clip by the fold model that held its "
              "speaker out); --corpus is for model directories")
    try:
        return score_run(run_dir, wanted, seed=seed, per_corpus=per_corpus or None, cache=cache,
                         talkers=talkers, say=lambda m: err.print(f"[dim]{escape(m)}[/]"), **hooks)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(f"{run_dir}: {exc}")


def _score_model(target, corpus, wanted, seed, per_corpus, threads, runtime, talkers, hooks,
                 segment) -> dict[str, Any]:
    from serkit.config import InferenceConfig
    from serkit.evaluation.robustness import load_labelled, score_predictor
    from serkit.inference.modeldir import ModelError
    from serkit.inference.predictor import Predictor

    if not corpus:
        _fail("say which labelled clips to score: --corpus ADAPTER:PATH (e.g. emodb:/data/emodb) or a CSV "
              "with path,label,speaker columns")
    specs = [parse_corpus(c) for c in corpus]
    try:
        settings = InferenceConfig(runtime=runtime, threads=threads)
    except ValueError as exc:
        _fail(f"bad inference option: {exc}")
    try:
        predictor = Predictor.load(target, inference=settings, segments=_segments(segment), say=lambda m: err.print(f"[dim]{escape(m)}[/]"))
    except ModelError as exc:
        msg = str(exc)
        if Path(target).is_dir() and "no model.json" in msg:
            msg += " nor a finished serkit run directory (no metrics.json, manifest.csv, predictions.csv)"
        _fail(f"cannot load the model: {msg}")
    except (ModuleNotFoundError, FileNotFoundError, json.JSONDecodeError) as exc:
        _fail(f"cannot load the model {target}: {exc}")
    try:
        data = load_labelled(specs, predictor.card, predictor.classes)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if data.manifest.empty:
        _fail(f"none of the clips has a label among the model's classes ({', '.join(predictor.classes)}); "
              + "; ".join(f"{n}: {why}" for why, n in data.left_out.items()))
    err.print(f"[dim]{len(data.manifest)} labelled clip(s) in {', '.join(str(s[1]) for s in specs)}; "
              f"scoring up to {per_corpus or 'all'} per corpus with {predictor.name} ({predictor.runtime})[/]")
    try:
        return score_predictor(predictor, data, wanted, seed=seed, per_corpus=per_corpus or None,
                               talkers=talkers, **hooks)
    except ValueError as exc:
        _fail(str(exc))
