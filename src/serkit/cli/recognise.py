"""``serkit predict``, ``serkit subtitles``, ``serkit models``, ``serkit train``: the recogniser on
the command line. They only wrap :class:`serkit.inference.predictor.Predictor` (and, for train,
:func:`serkit.evaluation.train.train_model`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from serkit.cli.output import FORMATS, render, results_table, timeline_table

console = Console()
err = Console(stderr=True)

MODEL_HELP = "installed model name or model directory (default: serkit-default)"


def _fail(msg: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(msg)}")
    raise typer.Exit(code)


def expand_inputs(paths: List[Path]) -> list[str]:
    """Files as given; folders searched recursively for audio files (sorted)."""
    from serkit.corpora.base import find_audio_files

    out: list[str] = []
    for p in paths:
        out.extend(str(f) for f in find_audio_files(p)) if p.is_dir() else out.append(str(p))
    return out


SEGMENT_HELP = "long-recording setting KEY=VALUE (SegmentConfig, e.g. window_s=4, vad=energy)"


def _segments(items: Optional[List[str]]):
    from serkit.config import SegmentConfig, apply_overrides

    try:
        return SegmentConfig.model_validate(apply_overrides({}, list(items or [])))
    except ValueError as exc:
        _fail(f"bad --segment option: {exc}")


def _load(model: Optional[str], segment: Optional[List[str]] = None, **inference):
    from serkit.config import InferenceConfig
    from serkit.inference.modeldir import ModelError
    from serkit.inference.predictor import Predictor

    segments = _segments(segment)
    try:
        settings = InferenceConfig(**{k: v for k, v in inference.items() if v is not None})
    except ValueError as exc:
        _fail(f"bad inference option: {exc}")
    try:
        return Predictor.load(model, segments=segments, inference=settings,
                              say=lambda msg: err.print(f"[dim]{msg}[/]"))
    except (ModelError, ModuleNotFoundError, FileNotFoundError) as exc:
        _fail(str(exc))


def _emit(text: str, out: Optional[Path]) -> None:
    """Results to stdout, or to a file (its folder created)."""
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    err.print(f"written: {out}")


def _progress(total: int, quiet: bool) -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                    disable=quiet or not err.is_terminal, transient=True)


def predict(paths: List[Path] = typer.Argument(..., help="audio files and/or folders (searched recursively)"),
            model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
            timeline: bool = typer.Option(False, "--timeline", help="emotion segments over time (long recordings)"),
            fmt: str = typer.Option("table", "--format", "-f", help="table, json, jsonl or csv"),
            out: Optional[Path] = typer.Option(None, "--out", help="write the results to this file"),
            batch_size: int = typer.Option(16, "--batch-size", min=1, help="clips scored together"),
            runtime: str = typer.Option("auto", "--runtime", help="auto (ONNX Runtime for models that "
                                        "can be exported, like the default one; else torch), torch or onnx"),
            precision: str = typer.Option("auto", "--precision", help="torch encoder arithmetic: auto (bf16 "
                                          "where the CPU has it natively, else fp32), fp32 or bf16"),
            threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all cores)"),
            segment: Optional[List[str]] = typer.Option(None, "--segment", "-s", help=SEGMENT_HELP),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Recognise the emotion of audio files, folders of clips, or long recordings (--timeline)."""
    from serkit.io.audio import AudioError

    if fmt not in FORMATS:
        _fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out is not None and fmt == "table":
        fmt = {".json": "json", ".jsonl": "jsonl", ".csv": "csv"}.get(out.suffix.lower(), "")
        if not fmt:
            _fail(f"say which format to write to {out}: --format json, jsonl or csv")
    files = expand_inputs(paths)
    if not files:
        _fail("no audio files found in " + ", ".join(map(str, paths)))
    predictor = _load(model, segment, runtime=runtime, precision=precision, threads=threads,
                      batch_size=batch_size)
    with _progress(len(files), quiet) as bar:
        task = bar.add_task("recognising", total=len(files))
        if timeline:
            results = []
            for f in files:
                try:
                    results.append({"path": f, **predictor.predict_long(f)})
                except AudioError as exc:
                    results.append({"path": f, "error": str(exc), "kind": exc.kind})
                bar.advance(task)
        else:
            results = predictor.predict_files(files, batch_size=batch_size,
                                              progress=lambda n: bar.advance(task, n))
    if fmt == "table":
        if timeline:
            for r in results:
                if "error" in r:
                    console.print(f"[red]cannot read[/] {r['error']}")
                else:
                    console.print(timeline_table(r))
        else:
            console.print(results_table(results, predictor.classes))
    else:
        _emit(render(results, fmt, predictor.classes, timeline), out)
    failed = [r for r in results if "error" in r]
    if failed:
        err.print(f"[yellow]{len(failed)} of {len(results)} file(s) could not be read[/] "
                  "(each has an `error`; the others were recognised)")
    if failed and len(failed) == len(results):
        raise typer.Exit(1)


def subtitles(source: Path = typer.Argument(..., help="audio file"),
              out: Optional[Path] = typer.Option(None, "--out", "-o", help="OUT.srt or OUT.vtt (default: stdout)"),
              fmt: Optional[str] = typer.Option(None, "--format", "-f", help="srt or vtt (default: from --out, else srt)"),
              model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
              language: Optional[str] = typer.Option(None, "--language", "-l",
                                                     help="spoken language code (default: detected)"),
              segment: Optional[List[str]] = typer.Option(None, "--segment", "-s", help=SEGMENT_HELP)) -> None:
    """Subtitles (Whisper transcription, offline) with every cue tagged by its emotion."""
    from serkit.corpora.manifest import EMOTION_COLORS
    from serkit.io.audio import AudioError

    fmt = fmt or (out.suffix.lower().lstrip(".") if out is not None and out.suffix else "srt")
    if fmt not in ("srt", "vtt"):
        _fail(f"unknown subtitle format {fmt!r} (srt or vtt)")
    predictor = _load(model, segment)
    try:
        text = predictor.subtitles(str(source), fmt=fmt, language=language,
                                   styles=EMOTION_COLORS if fmt == "vtt" else None)
    except AudioError as exc:
        _fail(str(exc))
    except ModuleNotFoundError as exc:
        _fail(str(exc))
    _emit(text, out)


def models(name: Optional[str] = typer.Argument(None, help="show this model's card")) -> None:
    """The installed models (or one model's card)."""
    from serkit.inference.modelcard import card_summary, render_card
    from serkit.inference.modeldir import ModelError, installed_models, read_card, resolve_model

    if name is not None:
        try:
            console.print(render_card(read_card(resolve_model(name))), markup=False)
        except ModelError as exc:
            _fail(str(exc))
        return
    t = Table(title="installed models (serkit predict --model NAME; serkit models NAME for a card)")
    t.add_column("name", no_wrap=True)
    for col in ("classes", "backbone + model", "UA %", "use", "where"):
        t.add_column(col, overflow="fold")
    for n, d in installed_models().items():
        try:
            card = read_card(d)
            s = card_summary(card)
        except ModelError as exc:
            t.add_row(n, "[red]unreadable[/]", str(exc), "", "", str(d))
            continue
        use = "non-commercial" if (card.get("licence") or {}).get("non_commercial") else "see card"
        t.add_row(n, s["classes"], f"{s['backbone']} + {s['model']}", s["ua"], use, str(d))
    console.print(t)


def train(config: Path = typer.Argument(..., help="experiment YAML (the recipe)"),
          out: Path = typer.Option(..., "--out", help="model directory to write"),
          override: Optional[List[str]] = typer.Option(None, "-o", "--override", help="dotted override"),
          run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="where the evaluation runs go"),
          evaluate: bool = typer.Option(True, "--eval/--no-eval", help="evaluate before refitting"),
          quiet: bool = typer.Option(False, "--quiet", help="no progress bars")) -> None:
    """Evaluate a recipe, refit it on all the data and write a model directory (with its card)."""
    from serkit.config import load_config
    from serkit.evaluation.train import train_model

    try:
        cfg = load_config(config, override or [])
        res = train_model(cfg, out, run_dir=run_dir, evaluate=evaluate, progress=not quiet, console=console)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    for ev in res.card["evaluations"]:
        console.print(f"{ev['name']}: UA {100 * ev['ua']['mean']:.1f} ± {100 * ev['ua']['std']:.1f} "
                      f"({ev['protocol']['description']})")
    console.print(f"model: {res.model_dir}  (serkit predict --model {res.model_dir} FILE)")
