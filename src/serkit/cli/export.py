"""``serkit export``: a model directory as one ONNX graph that runs without torch (wraps
:func:`serkit.inference.onnx_export.export_onnx`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from serkit.cli.recognise import _fail, err


def export(model: Optional[str] = typer.Argument(None, help="installed model name or model directory "
                                                 "(default: serkit-default)"),
           fmt: str = typer.Option("onnx", "--format", "-f", help="export format (onnx)"),
           out: Path = typer.Option(..., "--out", help="directory to write (new or empty)"),
           quantize: Optional[str] = typer.Option(None, "--quantize",
                                                  help="int8: dynamic int8 MatMul weights (smaller, faster, "
                                                       "slightly different scores)")) -> None:
    """Export a model to ONNX: encoder, pooling and head in one graph; `serkit predict --model OUT`
    then runs on ONNX Runtime without torch (exporting needs the onnx extra of serkit)."""
    if fmt != "onnx":
        _fail(f"unknown export format {fmt!r} (onnx)")
    if quantize not in (None, "int8", "none"):
        _fail(f"unknown --quantize {quantize!r} (int8)")
    from serkit.inference.modeldir import ModelError

    try:
        from serkit.inference.onnx_export import export_onnx
    except ModuleNotFoundError as exc:   # pragma: no cover - torch is a core dependency
        _fail(f"exporting needs torch: {exc}")
    try:
        export_onnx(model, out, quantize=None if quantize == "none" else quantize,
                    log=lambda msg: err.print(msg, markup=False, highlight=False))
    except ModelError as exc:
        _fail(str(exc))
    except ModuleNotFoundError as exc:
        _fail(f"{exc} (exporting needs the onnx package: pip install 'serkit[onnx]')")
