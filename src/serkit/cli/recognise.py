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
    """Files as given; folders searched recursively; glob patterns; manifest CSVs (a ``path`` column).
    See :mod:`serkit.inference.inputs`."""
    from serkit.inference.inputs import InputError, expand_inputs as expand

    try:
        return expand(paths)
    except InputError as exc:
        _fail(str(exc))


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


PARQUET_HINT = "install it with: pip install 'serkit[distributed]'"


def _write_parquet(results, classes, timeline: bool, out: Path, seconds: float) -> None:
    from serkit.inference.batch import ParquetSink, results_table as arrow_table

    try:
        with ParquetSink(out, classes, timeline) as sink:
            sink.write(arrow_table(results, classes, timeline))
    except ModuleNotFoundError as exc:
        _fail(f"Parquet output needs pyarrow ({exc}); {PARQUET_HINT}")
    _summary(sink.files, sink.rows, sink.failed, sink.out, sink.failed_out, seconds, "locally")


def _summary(files: int, rows: int, failed: int, out: Path, failed_out: Path, seconds: float,
             where: str) -> None:
    rate = files / seconds if seconds > 0 else float("nan")
    seg = f", {rows} rows" if rows != files else ""
    err.print(f"{files} file(s){seg} {where} in {seconds:.1f} s ({rate:.1f} files/s) -> {out}",
              soft_wrap=True)
    colour = "yellow" if failed else "green"
    err.print(f"[{colour}]{failed} of {files} file(s) could not be read[/]"
              + (f" (listed in {failed_out}; the others were recognised)" if failed else
                 f" ({failed_out} is empty)"), soft_wrap=True)


def _predict_ray(files: list[str], model, segment, timeline: bool, batch_size: int, out: Path,
                 address: Optional[str], workers: Optional[int], cpus_per_worker: float,
                 quiet: bool, **inference) -> None:
    from serkit.config import InferenceConfig, RayConfig
    from serkit.inference.modeldir import ModelError

    try:
        from serkit.inference.distributed import predict_on_ray
        import ray  # noqa: F401 - checked here to say how to install it
    except ImportError as exc:
        _fail(f"--engine ray needs Ray ({exc}); {PARQUET_HINT}")
    try:
        cfg = RayConfig(address=address, actors=workers, cpus_per_actor=cpus_per_worker)
        settings = InferenceConfig(**inference)
    except ValueError as exc:
        _fail(str(exc))
    where = f"the cluster at {address or _ray_env()}" if address or _ray_env() else "a local instance"
    err.print(f"recognising {len(files)} file(s) on Ray ({where})")
    import ray.exceptions

    with _progress(len(files), quiet) as bar:
        task = bar.add_task("recognising (Ray)", total=len(files))
        try:
            s = predict_on_ray(files, out, model=model, segments=_segments(segment), timeline=timeline,
                               batch_size=batch_size, cfg=cfg, inference=settings,
                               progress=lambda n: bar.advance(task, n))
        except ModelError as exc:
            _fail(str(exc))
        except ConnectionError as exc:
            _fail(f"cannot reach the Ray cluster at {address or _ray_env()}: {exc}")
        except ray.exceptions.RayError as exc:
            text = str(exc).strip()
            last = text.splitlines()[-1].strip(' "') if text else repr(exc)
            hint = (" (is serkit[distributed] installed, at this version, on every node of the cluster?)"
                    if "ModuleNotFoundError" in text or "No module named" in text else "")
            _fail(f"the Ray job failed: {last}{hint}; Ray's logs: /tmp/ray/session_latest/logs")
    _summary(s.files, s.rows, s.failed, s.out, s.failed_out, s.seconds, f"on Ray ({s.actors} actor(s))")
    if s.failed and s.failed == s.files:
        raise typer.Exit(1)


def _ray_env() -> str:
    import os

    return os.environ.get("RAY_ADDRESS", "")


INPUT_HELP = ("audio files, folders (searched recursively), glob patterns (quoted: \"data/**/*.flac\") "
              "and/or manifest CSVs (a `path` column, relative to the CSV)")


def predict(paths: List[Path] = typer.Argument(..., help=INPUT_HELP),
            model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
            timeline: bool = typer.Option(False, "--timeline", help="emotion segments over time (long recordings)"),
            fmt: str = typer.Option("table", "--format", "-f", help="table, json, jsonl, csv or parquet"),
            out: Optional[Path] = typer.Option(None, "--out", help="write the results to this file"),
            batch_size: int = typer.Option(16, "--batch-size", min=1, help="clips scored together"),
            runtime: str = typer.Option("auto", "--runtime", help="auto (ONNX Runtime for models that "
                                        "can be exported, like the default one; else torch), torch or onnx"),
            precision: str = typer.Option("auto", "--precision", help="torch encoder arithmetic: auto (bf16 "
                                          "where the CPU has it natively, else fp32), fp32 or bf16"),
            threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all cores)"),
            segment: Optional[List[str]] = typer.Option(None, "--segment", "-s", help=SEGMENT_HELP),
            engine: str = typer.Option("local", "--engine", help="local (this process) or ray (a Ray "
                                       "cluster; needs serkit[distributed] and --out FILE.parquet)"),
            address: Optional[str] = typer.Option(None, "--address", help="--engine ray: the cluster to "
                                                  "join (auto or HEAD_IP:6379; default: "
                                                  "$RAY_ADDRESS, else a local Ray instance)"),
            workers: Optional[int] = typer.Option(None, "--workers", min=1, help="--engine ray: actors, "
                                                  "each holding one model (default: one per CPU)"),
            cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", min=0.01,
                                                  help="--engine ray: CPUs (torch threads) per actor"),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Recognise the emotion of audio files, folders of clips, or long recordings (--timeline)."""
    import time

    from serkit.inference.batch import predict_paths

    if fmt not in FORMATS + ("parquet",):
        _fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS + ('parquet',))}")
    if engine not in ("local", "ray"):
        _fail(f"unknown engine {engine!r}; choose local or ray")
    if out is not None and fmt == "table":
        fmt = {".json": "json", ".jsonl": "jsonl", ".csv": "csv",
               ".parquet": "parquet", ".pq": "parquet"}.get(out.suffix.lower(), "")
        if not fmt:
            _fail(f"say which format to write to {out}: --format json, jsonl, csv or parquet")
    if fmt == "parquet" and out is None:
        _fail("--format parquet writes a file: give --out FILE.parquet")
    if engine == "ray" and fmt != "parquet":
        _fail("--engine ray writes Parquet: give --out FILE.parquet")
    files = expand_inputs(paths)
    if not files:
        _fail("no audio files found in " + ", ".join(map(str, paths)))
    if engine == "ray":
        _predict_ray(files, model, segment, timeline, batch_size, out, address, workers,
                     cpus_per_worker, quiet, runtime=runtime, precision=precision)
        return
    predictor = _load(model, segment, runtime=runtime, precision=precision, threads=threads,
                      batch_size=batch_size)
    t0 = time.perf_counter()
    with _progress(len(files), quiet) as bar:
        task = bar.add_task("recognising", total=len(files))
        results = predict_paths(predictor, files, timeline=timeline, batch_size=batch_size,
                                progress=lambda n: bar.advance(task, n))
    failed = [r for r in results if "error" in r]
    if fmt == "parquet":
        _write_parquet(results, predictor.classes, timeline, out, time.perf_counter() - t0)
    elif fmt == "table":
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
    if failed and fmt != "parquet":
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
