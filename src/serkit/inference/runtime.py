"""Which runtime a model runs on: torch, or ONNX Runtime through a cached whole-model export.

``InferenceConfig.runtime`` (``serkit predict --runtime``):

* ``torch`` — the model directory as trained (any model family);
* ``onnx`` — an exported directory (``serkit export``) as it is; a trained directory is exported
  once (:func:`serkit.inference.onnx_export.export_onnx`, which checks the graph against torch
  within 1e-4) into ``$SERKIT_CACHE/onnx/<name>-<key>`` and that copy is used from then on;
* ``auto`` (the default) — ``onnx`` when the model can be exported (a Whisper encoder with pooled
  features and a torch head, as the default model) and ``onnx`` / ``onnxruntime`` are installed,
  else ``torch``. The exported graph computes the same float32 numbers as torch (within 1e-6 on the
  default model) about twice as fast on CPU and loads in a fraction of a second without importing
  torch or transformers (bench/results/speed.md).

The cache is ``$SERKIT_ONNX_CACHE``, else ``$SERKIT_CACHE/onnx`` (default ``~/.cache/serkit/onnx``).
The cache key is a hash of the source directory's ``model.json`` and estimator files, so a retrained
model is exported again; the export is written to a temporary folder and renamed into place, so
processes starting together (server workers, Ray actors) never see half a directory.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from serkit.inference.modeldir import ModelError, read_card

__all__ = ["choose_model_dir", "exportable_reason", "is_onnx_card", "onnx_cache_dir"]

log = logging.getLogger(__name__)


def is_onnx_card(card: dict[str, Any]) -> bool:
    return (card.get("runtime") or {}).get("name") == "onnx"


def _cache_root() -> Path:
    """``$SERKIT_ONNX_CACHE``, else ``$SERKIT_CACHE/onnx`` (default ``~/.cache/serkit/onnx``)."""
    if os.environ.get("SERKIT_ONNX_CACHE"):
        return Path(os.environ["SERKIT_ONNX_CACHE"])
    base = os.environ.get("SERKIT_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "serkit") / "onnx"


def onnx_cache_dir(model_dir: str | Path) -> Path:
    """Where the ONNX export of a trained model directory is cached (keyed by its contents)."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    files = [model_dir / "model.json"] + sorted((model_dir / "estimator").glob("*"))
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    name = str(read_card(model_dir).get("name") or model_dir.name)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
    return _cache_root() / f"{safe}-{h.hexdigest()[:16]}"


def exportable_reason(card: dict[str, Any], model_dir: Path) -> str | None:
    """None when the card describes a model ``serkit export`` handles, else why not (a cheap check
    from the files; the export itself checks everything again)."""
    streams = (card.get("features") or {}).get("streams") or []
    if len(streams) != 1 or (card.get("features") or {}).get("metadata"):
        return "it has several feature streams or metadata features"
    if streams[0].get("kind") != "ssl" or (streams[0].get("params") or {}).get("frames"):
        return "its features are not pooled ssl features"
    if (card.get("backbone") or {}).get("kind") != "whisper":
        return "its backbone is not a Whisper encoder"
    try:
        est = json.loads((model_dir / "estimator" / "estimator.json").read_text())
    except (OSError, ValueError):
        return "its estimator has no estimator.json"
    if est.get("kind") != "torch_network":
        return f"its estimator is {est.get('kind')!r}, not a torch network"
    return None


def _runtime_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "torch"))


def choose_model_dir(model_dir: str | Path, runtime: str = "auto",
                     say: Callable[[str], None] | None = None) -> Path:
    """The directory to load for ``runtime`` (``auto`` / ``torch`` / ``onnx``): ``model_dir`` itself,
    or its cached ONNX export (made here on first use)."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    if is_onnx_card(card):
        if runtime == "torch":
            raise ModelError(f"{model_dir} is an exported ONNX model: it runs on ONNX Runtime only "
                             "(use runtime auto or onnx)")
        return model_dir
    if runtime == "torch":
        return model_dir
    why = exportable_reason(card, model_dir)
    if why is not None:
        if runtime == "onnx":
            raise ModelError(f"{model_dir}: cannot run on ONNX Runtime: {why} (use runtime torch)")
        return model_dir
    if not _runtime_installed():
        if runtime == "onnx":
            raise ModelError("runtime onnx needs onnxruntime and onnx: pip install 'serkit[onnx]'")
        return model_dir
    target = onnx_cache_dir(model_dir)
    if (target / "model.json").is_file():
        return target
    return _export_once(model_dir, target, runtime, say)


def _export_once(model_dir: Path, target: Path, runtime: str, say: Callable[[str], None] | None) -> Path:
    from serkit.inference.onnx_export import ExportError, export_onnx

    (say or log.info)(f"exporting {model_dir.name} to ONNX once (cached in {target.parent})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_onnx(model_dir, tmp / "model")
        card_path = tmp / "model" / "model.json"
        card = json.loads(card_path.read_text())
        card["name"] = read_card(model_dir).get("name", card.get("name"))  # the model the user asked for
        card["runtime"]["cached_from"] = str(model_dir)
        card_path.write_text(json.dumps(card, indent=1))
        try:
            os.replace(tmp / "model", target)
        except OSError:       # another process got there first: use its copy
            if not (target / "model.json").is_file():
                raise
    except ExportError as exc:
        if runtime == "onnx":
            raise
        log.warning("running %s on torch: %s", model_dir, exc)
        return model_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
