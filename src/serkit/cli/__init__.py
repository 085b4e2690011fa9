"""The ``serkit`` command."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="serkit: speech emotion recognition with honest, speaker-independent evaluation.")


def _version(value: bool) -> None:
    if value:
        from serkit import __version__

        typer.echo(f"serkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """serkit: speech emotion recognition with honest, speaker-independent evaluation."""
data_app = typer.Typer(no_args_is_help=True, help="Inspect corpora.")
explain_app = typer.Typer(no_args_is_help=True, help="Explanations of trained models.")
app.add_typer(data_app, name="data")
app.add_typer(explain_app, name="explain")
console = Console()
err = Console(stderr=True)


from serkit.cli import recognise as _recognise  # noqa: E402
from serkit.cli import robustness as _robustness  # noqa: E402
from serkit.cli import serve as _serve  # noqa: E402
from serkit.cli.export import export as _export  # noqa: E402

# the recogniser's commands (they only wrap the Predictor), listed first in --help
app.command("predict")(_recognise.predict)
app.command("subtitles")(_recognise.subtitles)
app.command("models")(_recognise.models)
app.command("train")(_recognise.train)
app.command("serve")(_serve.serve)
app.command("export")(_export)
app.command("robustness")(_robustness.robustness)


def _fail(msg: str, code: int = 2) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(msg)}")
    raise typer.Exit(code)


def _pct(m: dict) -> str:
    return f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}"


def summary_table(metrics: dict) -> Table:
    proto = metrics["protocol"]
    tag = "speaker-independent" if proto["speaker_independent"] else "[bold yellow]SPEAKER-DEPENDENT[/]"
    if proto.get("transductive"):
        tag += ", [bold yellow]TRANSDUCTIVE[/]"
    t = Table(title=f"{metrics['name']} — {proto['kind']} ({tag}), {proto['n_folds']} fold(s)",
              caption=f"[yellow]{proto['transductive_note']}[/]" if proto.get("transductive") else None)
    cols = ["model", "features", "corpora", "UA %", "WA %", "macro-F1 %"]
    row = [metrics["model"], metrics["features"], "+".join(metrics["corpora"]),
           _pct(metrics["ua"]), _pct(metrics["wa"]), _pct(metrics["macro_f1"])]
    if metrics.get("ece"):  # expected calibration error, 15 confidence bins
        cols.append("ECE %")
        row.append(_pct(metrics["ece"]))
    if metrics.get("ece_uncalibrated"):
        cols.append("ECE before T-scaling %")
        row.append(_pct(metrics["ece_uncalibrated"]))
    for col in cols:
        t.add_column(col, justify="right" if "%" in col else "left")
    t.add_row(*row)
    return t


@app.command()
def run(config: Path = typer.Argument(..., help="experiment YAML"),
        override: Optional[List[str]] = typer.Option(None, "-o", "--override",
                                                     help="dotted override, e.g. protocol.kind=loso"),
        out: Optional[Path] = typer.Option(None, "--out", help="run directory (default runs/<name>-<time>)"),
        report: bool = typer.Option(True, "--report/--no-report", help="write report.html at the end"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars")) -> None:
    """Run every fold of an experiment and write predictions, metrics and a report."""
    from serkit.config import load_config
    from serkit.evaluation.protocol import run_experiment

    try:
        cfg = load_config(config, override or [])
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    try:
        res = run_experiment(cfg, out, progress=not quiet, console=console)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    _print_summary(res.metrics)
    if report and cfg.report:
        _write_report(res.run_dir)
    console.print(f"results: {res.run_dir}")


def _print_summary(metrics: dict) -> None:
    console.print(summary_table(metrics))
    acct = metrics["accounting"]
    n_skip = len(acct["skipped"])
    line = f"{acct['rows_used']} of {acct['rows_scanned']} input rows used"
    if n_skip:
        line += f"; [yellow]{n_skip} skipped[/] (reasons in metrics.json and the report)"
    for reason, n in acct.get("excluded", {}).items():
        line += f"; {n} left out: {reason}"
    console.print(line)


def _write_report(run_dir: Path) -> None:
    try:
        from serkit.reporting import write_report
    except ImportError:
        return
    try:
        path = write_report(run_dir)
    except ValueError as exc:  # e.g. a run directory of an unknown schema version
        _fail(str(exc))
    console.print(f"report: {path}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory written by `serkit run`")) -> None:
    """Write RUN_DIR/report.html (self-contained, opens offline)."""
    if not (run_dir / "metrics.json").is_file():
        _fail(f"{run_dir} is not a serkit run directory (no metrics.json)")
    _write_report(run_dir)


@app.command()
def compare(run_dirs: List[Path] = typer.Argument(..., help="run directories"),
            out: Optional[Path] = typer.Option(None, "--out", help="output path stem (.md and .html)")) -> None:
    """Comparison table of several runs, grouped by corpora / label set / protocol."""
    from serkit.reporting import write_comparison

    bad = [str(d) for d in run_dirs if not (d / "metrics.json").is_file()]
    if bad:
        _fail(f"not serkit run directories (no metrics.json): {', '.join(bad)}")
    try:
        md, html = write_comparison(run_dirs, out)
    except ValueError as exc:
        _fail(str(exc))
    console.print(Path(md).read_text())
    console.print(f"written: {md} and {html}")


@data_app.command("scan")
def data_scan(corpus: str = typer.Argument(..., help="ravdess, cremad, tess, savee, emodb, iemocap, csv, folder"),
              root: Path = typer.Argument(..., help="corpus folder (or CSV file for `csv`)"),
              as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
              label_set: str = typer.Option("native", "--label-set"),
              check_readable: bool = typer.Option(False, "--check-readable",
                                                  help="decode every file (slower)"),
              name: Optional[str] = typer.Option(
                  None, "--name", help="csv / folder: the corpus's own name (manifest `corpus` "
                                       "column, key prefix; default the CSV stem / folder name)"),
              speaker_regex: Optional[str] = typer.Option(
                  None, "--speaker-regex", help="csv / folder: regex finding the speaker in file "
                                                "names (group `speaker` or group 1)"),
              key_column: Optional[str] = typer.Option(
                  None, "--key-column", help="csv: column with a unique id per file"),
              base_dir: Optional[Path] = typer.Option(
                  None, "--base-dir", help="csv: folder relative paths in the CSV start from"),
              demographics: Optional[Path] = typer.Option(
                  None, "--demographics", help="cremad: explicit VideoDemographics.csv"),
              max_problems: int = typer.Option(20, "--max-problems",
                                               help="problems listed in the table")) -> None:
    """Count utterances, speakers, labels, genders, duration and problems of a corpus."""
    from serkit.corpora import CORPORA, adapter_options, load_corpus
    from serkit.corpora.scan import render_summary, summarize

    if corpus not in CORPORA:
        _fail(f"unknown corpus {corpus!r}; choose one of {', '.join(sorted(CORPORA))}")
    if not root.exists():
        _fail(f"{root} does not exist")
    flags = {"corpus": "--name", "speaker_regex": "--speaker-regex", "key_column": "--key-column",
             "base_dir": "--base-dir", "demographics": "--demographics"}
    options = {k: v for k, v in {"corpus": name, "speaker_regex": speaker_regex,
                                 "key_column": key_column, "base_dir": base_dir,
                                 "demographics": demographics}.items() if v is not None}
    takes = adapter_options(corpus)
    unknown = [flags[k] for k in options if k not in takes]
    if unknown:
        _fail(f"corpus {corpus!r} does not take {', '.join(unknown)} (it takes "
              f"{', '.join(flags[k] for k in takes) or 'no options'})")
    try:
        result = load_corpus(corpus, root, label_set=label_set, check_readable=check_readable,
                             **options)
    except ValueError as exc:
        _fail(str(exc))
    summary = summarize(result)
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
    else:
        console.print(render_summary(summary, max_problems=max_problems))


@explain_app.command("gradcam")
def explain_gradcam(run_dir: Path = typer.Argument(..., help="run directory of a CNN experiment"),
                    fold: Optional[str] = typer.Option(None, "--fold", help="one fold (default: all)"),
                    per_class: int = typer.Option(1, "--per-class", help="test utterances per class"),
                    key: Optional[List[str]] = typer.Option(None, "--key", help="explain these utterances"),
                    report: bool = typer.Option(True, "--report/--no-report",
                                                help="rewrite report.html with the gallery")) -> None:
    """Grad-CAM heat maps on the last convolutional layer, saved as PNG + NPZ in the run dir."""
    from serkit.evaluation.explain import gradcam_run

    try:
        paths = gradcam_run(run_dir, fold=fold, per_class=per_class, keys=key or None)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"{len(paths)} Grad-CAM maps written under {run_dir}/folds/*/gradcam/")
    if report:
        _write_report(run_dir)


@app.command("list")
def list_components() -> None:
    """Corpora, label sets, feature kinds, models and protocols serkit knows."""
    from serkit.corpora import CORPORA
    from serkit.corpora.manifest import LABEL_SETS
    from serkit.evaluation.splits import SPLITS
    from serkit.features.base import FEATURES
    from serkit.models.registry import available

    t = Table(title="serkit components")
    t.add_column("kind")
    t.add_column("names")
    t.add_row("corpora", ", ".join(sorted(CORPORA)))
    t.add_row("label sets", ", ".join(LABEL_SETS))
    t.add_row("features", ", ".join(sorted(FEATURES)))
    t.add_row("models", ", ".join(available()))
    t.add_row("protocols", ", ".join(f"{k}{'' if v[1] else ' (speaker-dependent)'}" for k, v in SPLITS.items()))
    console.print(t)


@app.command()
def demo(out: Path = typer.Option(Path("demo"), "--out", help="where the demo writes its files"),
         model: Optional[str] = typer.Option(None, "--model", "-m", help="model name or directory"),
         research: bool = typer.Option(False, "--research",
                                       help="instead: the research job (eGeMAPS + SVM on EmoDB, 5 "
                                            "speaker-independent folds, report)"),
         max_folds: Optional[int] = typer.Option(None, "--max-folds", help="research job: first N folds")
         ) -> None:
    """The recogniser on a one-minute recording: emotion timeline (table, JSON, picture) and
    emotion-tagged subtitles, with the default model (offline)."""
    if research:
        _research_demo(max_folds, out)
        return
    from serkit.cli.demo import run_demo
    from serkit.inference.modeldir import ModelError

    try:
        run_demo(out, model, console)
    except (FileNotFoundError, ModelError, ModuleNotFoundError) as exc:
        _fail(str(exc))


def _research_demo(max_folds: Optional[int], out: Optional[Path]) -> None:
    from importlib.resources import files

    from serkit.config import load_config
    from serkit.evaluation.protocol import run_experiment

    overrides = [f"protocol.max_folds={max_folds}"] if max_folds else []
    cfg = load_config(Path(str(files("serkit.resources") / "demo_emodb.yaml")), overrides)
    roots = cfg.data.corpus_roots()
    if not all(r.exists() for _, r in roots):
        console.print(
            "[bold]serkit demo --research[/] needs the EmoDB corpus. Download it from "
            "http://emodb.bilderbar.info/ (free for research), unpack it so that the audio files are in "
            "<DIR>/emodb/wav/*.wav, and run again with SERKIT_DATA=<DIR> (the developer set-up expects "
            "../shared/datasets).")
        raise typer.Exit(1)
    try:
        res = run_experiment(cfg, out / "research" if out else None, progress=True, console=console)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    _print_summary(res.metrics)
    _write_report(res.run_dir)
    console.print(f"results: {res.run_dir}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
