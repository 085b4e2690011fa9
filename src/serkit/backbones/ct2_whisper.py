"""Reader for CTranslate2 ``model.bin`` files and conversion of Whisper to Hugging Face.

CTranslate2 stores a model as one little-endian binary file:

* ``uint32`` binary version (6 for current CTranslate2 releases);
* from version 2: the spec name (``uint16`` length incl. NUL, UTF-8 bytes, NUL) and a
  ``uint32`` spec revision;
* ``uint32`` number of variables, then for each: name (string as above), ``uint8`` rank,
  ``rank`` x ``uint32`` dimensions, ``uint8`` dtype id (version >= 4; older files store the
  item size instead), ``uint32`` number of bytes, raw data;
* from version 3: ``uint32`` number of aliases, then (alias, target) string pairs.

The reader below is serkit's own implementation of that layout (it does not need the
``ctranslate2`` package). :func:`whisper_state_dict` then maps the CTranslate2 Whisper variable
names (fused QKV projections, ``layer_N`` scopes, ``gamma``/``beta`` norms) to the names of
``transformers.WhisperForConditionalGeneration``.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["CT2Model", "read_ct2_model", "whisper_state_dict", "whisper_config_kwargs"]

# dtype ids of binary version >= 4 (order of ``_dtype_to_type_id`` in CTranslate2).
_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
# binary versions < 4 stored the item size instead of a dtype id.
_LEGACY_ITEMSIZE = {4: "float32", 2: "int16", 1: "int8"}


class CT2Model:
    """Variables of a CTranslate2 model.

    Attributes
    ----------
    version : int
        Binary format version.
    spec : str
        Spec name, e.g. ``"WhisperSpec"``.
    revision : int
        Spec revision.
    variables : dict[str, numpy.ndarray]
        Variables by name; bfloat16 data are returned as float32.
    aliases : dict[str, str]
        Alias name -> target variable name (e.g. tied output projection).
    """

    def __init__(self, version: int, spec: str, revision: int,
                 variables: dict[str, np.ndarray], aliases: dict[str, str]):
        self.version = version
        self.spec = spec
        self.revision = revision
        self.variables = variables
        self.aliases = aliases

    def __getitem__(self, name: str) -> np.ndarray:
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return self.variables[name]

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def names(self) -> list[str]:
        """All variable and alias names."""
        return [*self.variables, *self.aliases]


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise ValueError("truncated CTranslate2 model file")
    return struct.unpack(fmt, raw)[0]


def _read_string(f: BinaryIO) -> str:
    n = _read(f, "<H")
    raw = f.read(n)
    if len(raw) != n:
        raise ValueError("truncated CTranslate2 model file")
    return raw.rstrip(b"\x00").decode("utf-8")


def _decode(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":
        u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        arr = u16.view(np.float32)
    else:
        arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    return arr.reshape(shape) if shape else arr.reshape(())


def read_ct2_model(path: str | Path) -> CT2Model:
    """Read a CTranslate2 ``model.bin`` (or a folder containing one).

    Parameters
    ----------
    path : str or Path
        The binary file or the model folder.

    Returns
    -------
    CT2Model
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    with open(path, "rb") as f:
        version = _read(f, "<I")
        if version < 1 or version > 6:
            raise ValueError(f"unsupported CTranslate2 binary version {version} in {path}")
        spec, revision = "", 1
        if version >= 2:
            spec = _read_string(f)
            revision = _read(f, "<I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(_read(f, "<I")):
            name = _read_string(f)
            rank = _read(f, "<B")
            shape = tuple(_read(f, "<I") for _ in range(rank))
            code = _read(f, "<B")
            dtype = _DTYPES[code] if version >= 4 else _LEGACY_ITEMSIZE[code]
            nbytes = _read(f, "<I") if version >= 4 else int(np.prod(shape, dtype=np.int64)) * code
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"truncated variable {name!r} in {path}")
            variables[name] = _decode(raw, dtype, shape)
        aliases: dict[str, str] = {}
        if version >= 3:
            for _ in range(_read(f, "<I")):
                alias = _read_string(f)
                aliases[alias] = _read_string(f)
    return CT2Model(version, spec, revision, variables, aliases)


def _count(model: CT2Model, prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    ids = {int(m.group(1)) for n in model.names() if (m := pat.match(n))}
    return max(ids) + 1 if ids else 0


def whisper_config_kwargs(model: CT2Model) -> dict:
    """Infer ``transformers.WhisperConfig`` keyword arguments from the weights.

    Head counts are stored as scalars (``encoder/num_heads``, ``decoder/num_heads``); sizes come
    from the weight shapes.
    """
    if model.spec and model.spec != "WhisperSpec":
        raise ValueError(f"not a Whisper model: spec {model.spec!r}")
    emb = model["decoder/embeddings/weight"]
    conv1 = model["encoder/conv1/weight"]
    d_model = int(emb.shape[1])
    enc_heads = int(model["encoder/num_heads"]) if "encoder/num_heads" in model else d_model // 64
    dec_heads = int(model["decoder/num_heads"]) if "decoder/num_heads" in model else d_model // 64
    return dict(
        vocab_size=int(emb.shape[0]),
        num_mel_bins=int(conv1.shape[1]),
        d_model=d_model,
        encoder_layers=_count(model, "encoder"),
        decoder_layers=_count(model, "decoder"),
        encoder_attention_heads=enc_heads,
        decoder_attention_heads=dec_heads,
        encoder_ffn_dim=int(model["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(model["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(model["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(model["decoder/position_encodings/encodings"].shape[0]),
    )


def whisper_state_dict(model: CT2Model, dtype=np.float32) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to ``WhisperForConditionalGeneration`` names.

    Fused self-attention ``linear_0`` is split into q/k/v (k has no bias in Whisper; CTranslate2
    stores zeros there), cross-attention ``linear_1`` into k/v; ``gamma``/``beta`` become
    ``weight``/``bias``. Only float weights are returned, cast to ``dtype``.
    """
    out: dict[str, np.ndarray] = {}

    def put(hf: str, ct2: str) -> None:
        out[hf] = np.ascontiguousarray(model[ct2], dtype=dtype)

    def norm(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", f"{ct2}/gamma")
        put(f"{hf}.bias", f"{ct2}/beta")

    def linear(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", f"{ct2}/weight")
        if f"{ct2}/bias" in model:
            put(f"{hf}.bias", f"{ct2}/bias")

    def split(hf: str, ct2: str, parts: tuple[str, ...]) -> None:
        w = np.asarray(model[f"{ct2}/weight"], dtype=dtype)
        b = np.asarray(model[f"{ct2}/bias"], dtype=dtype) if f"{ct2}/bias" in model else None
        n = w.shape[0] // len(parts)
        for i, p in enumerate(parts):
            out[f"{hf}.{p}.weight"] = np.ascontiguousarray(w[i * n:(i + 1) * n])
            if b is not None and p != "k_proj":
                out[f"{hf}.{p}.bias"] = np.ascontiguousarray(b[i * n:(i + 1) * n])

    def block(hf: str, ct2: str, cross: bool) -> None:
        split(f"{hf}.self_attn", f"{ct2}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        if cross:
            split(f"{hf}.encoder_attn", f"{ct2}/attention/linear_0", ("q_proj",))
            split(f"{hf}.encoder_attn", f"{ct2}/attention/linear_1", ("k_proj", "v_proj"))
            linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
            norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")

    for i in (1, 2):
        linear(f"model.encoder.conv{i}", f"encoder/conv{i}")
    put("model.encoder.embed_positions.weight", "encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(_count(model, "encoder")):
        block(f"model.encoder.layers.{i}", f"encoder/layer_{i}", cross=False)

    put("model.decoder.embed_tokens.weight", "decoder/embeddings/weight")
    put("model.decoder.embed_positions.weight", "decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(_count(model, "decoder")):
        block(f"model.decoder.layers.{i}", f"decoder/layer_{i}", cross=True)
    if "decoder/projection/weight" in model:
        put("proj_out.weight", "decoder/projection/weight")
    return out
