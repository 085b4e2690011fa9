"""The model directory: one format for every model family serkit trains.

::

    MODEL_DIR/
      model.json      format, serkit version, name, classes, label set, the feature pipeline spec
                      (audio preparation + extractor(s)), backbone id and weights checksum, the card
                      (training data, evaluation, licence terms)
      estimator/      the fitted model, pickle-free (serkit.models.persist: skops with an explicit
                      trusted-type list, or safetensors + a JSON spec)
      config.yaml     the training config (``serkit train config.yaml`` reproduces the model)
      README.md       the card in words

An exported ONNX directory (``serkit export``; :mod:`serkit.inference.onnx_runtime`) has
``"runtime": {"name": "onnx", ...}`` in model.json and ``model.onnx`` instead of ``estimator/``; it
loads without torch.

Loading never unpickles and never executes code from the directory. Installed models are found by
name: the ones shipped inside the package (``serkit-default``) and those under
``$SERKIT_MODELS`` (default ``~/.cache/serkit/models``).
"""
from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

from serkit.features.pipeline import FeaturePipeline
from serkit.models.persist import load_estimator, save_estimator

__all__ = ["DEFAULT_MODEL", "FORMAT", "ModelError", "installed_models", "load_model_dir",
           "read_card", "resolve_model", "save_model_dir", "user_models_dir"]

FORMAT = {"name": "serkit-model", "version": 1}
DEFAULT_MODEL = "serkit-default"


class ModelError(ValueError):
    """A model directory that cannot be used (the message names it and says why)."""


def user_models_dir() -> Path:
    base = os.environ.get("SERKIT_MODELS")
    if base:
        return Path(base)
    cache = os.environ.get("SERKIT_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "serkit") / "models"


def _packaged() -> Path:
    return Path(str(files("serkit.resources") / "models"))


def installed_models() -> dict[str, Path]:
    """Name -> directory of every installed model (packaged ones first; user ones may add more)."""
    out: dict[str, Path] = {}
    for root in (_packaged(), user_models_dir()):
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "model.json").is_file():
                    out.setdefault(d.name, d)
    return out


def resolve_model(name_or_dir: str | Path | None) -> Path:
    """A model directory from a path or an installed model's name (None: the default model)."""
    name_or_dir = DEFAULT_MODEL if name_or_dir is None else name_or_dir
    p = Path(name_or_dir).expanduser()
    if (p / "model.json").is_file():
        return p
    models = installed_models()
    if str(name_or_dir) in models:
        return models[str(name_or_dir)]
    if p.exists():
        raise ModelError(f"{p} is not a serkit model directory (no model.json)")
    known = ", ".join(sorted(models)) or "none"
    raise ModelError(f"no model named {str(name_or_dir)!r} and no such directory (installed models: "
                     f"{known}; `serkit models` lists them)")


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """``model.json`` of a model directory, format-checked."""
    path = Path(model_dir) / "model.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{model_dir} is not a serkit model directory (no model.json)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    fmt = meta.get("format", {})
    if fmt.get("name") != FORMAT["name"]:
        raise ModelError(f"{path}: not a serkit model ({fmt!r})")
    if fmt.get("version") != FORMAT["version"]:
        raise ModelError(f"{path}: model format version {fmt.get('version')!r}; this serkit reads "
                         f"version {FORMAT['version']} (upgrade serkit or re-export the model)")
    return meta


def save_model_dir(out: str | Path, *, name: str, pipeline: FeaturePipeline, estimator,
                   card: dict[str, Any], config_yaml: str | None = None,
                   readme: str | None = None) -> Path:
    """Write a model directory (refuses a pipeline a single new clip cannot use)."""
    import serkit

    pipeline.check_portable()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_estimator(estimator, out / "estimator")
    meta = {"format": FORMAT, "serkit_version": serkit.__version__, "name": name,
            "classes": [str(c) for c in estimator.classes_], "features": pipeline.spec(),
            **card, "estimator": "estimator"}
    (out / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    if config_yaml is not None:
        (out / "config.yaml").write_text(config_yaml)
    if readme is not None:
        (out / "README.md").write_text(readme)
    return out


def load_model_dir(model_dir: str | Path, threads: int = 0) -> tuple[dict[str, Any], FeaturePipeline, Any]:
    """``(card, feature pipeline, estimator)`` of a model directory."""
    model_dir = Path(model_dir)
    meta = read_card(model_dir)
    if (meta.get("runtime") or {}).get("name") == "onnx":
        from serkit.inference.onnx_runtime import load_onnx_model

        try:
            return (meta, *load_onnx_model(model_dir, meta, threads=threads))
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise ModelError(f"{model_dir}: {exc}") from None
    try:
        pipeline = FeaturePipeline.from_spec(meta["features"])
        pipeline.check_portable()
        estimator = load_estimator(model_dir / meta.get("estimator", "estimator"))
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise ModelError(f"{model_dir}: {exc}") from None
    if [str(c) for c in estimator.classes_] != meta["classes"]:
        raise ModelError(f"{model_dir}: the estimator's classes {list(estimator.classes_)} differ from "
                         f"model.json {meta['classes']}")
    return meta, pipeline, estimator
