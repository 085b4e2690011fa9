"""Export a model directory to one ONNX graph that runs without torch (``serkit export``).

What can be exported: a Whisper backbone (``ssl`` features, pooled, ``mean`` or ``meanstd``, any
``layers``) with a torch network head on the pooled vector (``torch_network`` estimators of the
``vector`` kind: the ``head_*`` networks, e.g. the default model's ``head_layers``). The graph holds

* the Whisper encoder, run as :class:`serkit.backbones.hf.Backbone` runs it: on the batch's own
  length (no 30 s padding), conv stem with the mel mask, sliced positional embeddings and a
  key-padding attention mask, so padded frames do not change the valid frames; only the layers up
  to the deepest one the head uses are kept;
* masked mean (‖ standard deviation) pooling over each clip's own frames and the layer selection
  of the ``ssl`` extractor;
* the estimator's fitted scaler and the head, then a softmax.

Inputs ``mel [batch, n_mels, frames]`` float32 (the Whisper log-mel of each clip, zero-padded to
the longest; :mod:`serkit.backbones.logmel`) and ``mel_lengths [batch]`` int64; output
``probabilities [batch, classes]``. Batch and length axes are dynamic.

Other model kinds (scikit-learn models such as the SVM or the ``ssl_probe``, CNNs on spectrograms,
wav2vec2-family backbones, fine-tuned encoders) are refused with a message saying what is
supported. ``quantize="int8"`` adds ONNX Runtime's dynamic int8 quantisation of the MatMul weights
(per channel; activations are quantised per batch at run time, so unlike the float32 graph a
clip's scores can shift slightly with its batch). The export needs the ``onnx`` package
(``pip install 'serkit[onnx]'``); running the result needs only ONNX Runtime.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serkit.inference.modeldir import FORMAT, ModelError, read_card, resolve_model
from serkit.inference.onnx_runtime import RUNTIME, file_sha256

__all__ = ["EXPORTABLE", "ExportError", "export_onnx"]

#: what ``serkit export --format onnx`` supports, in words (error messages, ``--help``)
EXPORTABLE = ("a Whisper backbone with pooled `ssl` features (pooling mean or meanstd, frames: false) "
              "and a torch network head on the pooled vector (`head_*` networks such as the default "
              "model's `head_layers`, or `mlp_001`)")

OPSET = 17
#: the TorchScript exporter (``dynamo=False``): on the default model its graph runs ~20 % faster
#: on ONNX Runtime than the torch.export-based one's (0.43 vs 0.52 s for 8 clips of 3.5 s, 2 threads),
#: exports in seconds and needs no onnxscript; torch deprecates it from 2.9 (serkit pins torch < 2.14)
EXPORTER = "torch.onnx.export (TorchScript, dynamo=False)"
INPUTS = [{"name": "mel", "dtype": "float32", "shape": ["batch", "n_mels", "frames"],
           "doc": "Whisper log-mel of each clip (serkit.backbones.logmel), zero-padded to the longest"},
          {"name": "mel_lengths", "dtype": "int64", "shape": ["batch"],
           "doc": "number of valid mel frames of each clip"}]


class ExportError(ModelError):
    """A model that cannot be exported (the message says why and what is supported)."""


# --------------------------------------------------------------------------- checks
def _check_exportable(card: dict[str, Any], pipeline, estimator, model_dir: Path) -> None:
    def refuse(why: str) -> None:
        raise ExportError(f"{model_dir}: cannot export to ONNX: {why}. Supported: {EXPORTABLE}.")

    if (card.get("runtime") or {}).get("name") == RUNTIME:
        refuse("it is already an ONNX export")
    if len(pipeline.streams_spec) != 1 or pipeline.metadata:
        refuse("two feature streams or metadata features")
    kind, _ = pipeline.streams_spec[0]
    if kind != "ssl":
        refuse(f"features of kind {kind!r} (a spectrogram / handcrafted front end)")
    ext = pipeline.extractors[0]
    if ext.frames:
        refuse("frame-level ssl features (frames: true)")
    if (card.get("backbone") or {}).get("kind", "whisper") != "whisper":
        refuse(f"the backbone {card['backbone'].get('id')!r} is not a Whisper encoder")
    from serkit.models.torch_network import TorchNetworkPredictor

    if not isinstance(estimator, TorchNetworkPredictor):
        refuse(f"the estimator is {type(estimator).__name__} (model {(card.get('model') or {}).get('name')!r})")
    if estimator._kind() != "vector":
        refuse(f"the network {estimator.network!r} takes {estimator._kind()} input")
    if set(estimator.scaler_) - {"x"}:
        refuse(f"a scaler for inputs {sorted(estimator.scaler_)}")


def _layer_indices(layers, n: int) -> list[int] | str:
    """Hidden-state indices the extractor's ``layers`` selects (``"mean"``: average of all)."""
    if layers in ("all", "mean"):
        return list(range(n)) if layers == "all" else "mean"
    idx = [layers] if isinstance(layers, int) else list(layers)
    for i in idx:
        if not -n <= i < n:
            raise ExportError(f"layer {i} does not exist in an encoder with {n} hidden states")
    return [i % n for i in idx]


# --------------------------------------------------------------------------- the graph
def _graph_module(backbone, layers, pooling: str, estimator, temperature: float | None = None):
    """The torch module that is exported (built here so that importing this module needs no torch)."""
    import torch
    from torch import nn

    class WhisperHeadGraph(nn.Module):
        def __init__(self):
            super().__init__()
            enc = backbone.model
            n = backbone.num_layers
            sel = _layer_indices(layers, n)
            self.average = sel == "mean"
            self.selected = list(range(n)) if self.average else sel
            self.depth = max(self.selected)                  # deepest hidden state the head uses
            self.final_norm = self.depth == n - 1            # HF: the last state is layer-normalised
            self.conv1, self.conv2 = enc.conv1, enc.conv2
            self.positions = enc.embed_positions
            self.layers = nn.ModuleList(list(enc.layers)[: self.depth])
            self.layer_norm = enc.layer_norm
            self.mean_only = pooling == "mean"
            scaler = estimator.scaler_.get("x")
            f = int(np.prod(estimator.input_shape_))
            width = backbone.hidden_size * (1 if pooling == "mean" else 2)
            if f != width * (1 if self.average else len(self.selected)):
                raise ExportError(f"the head takes {f} features but the encoder's selected layers give "
                                  f"{width * (1 if self.average else len(self.selected))}")
            mean = np.zeros(f, np.float32) if scaler is None else np.asarray(scaler[0], np.float32).reshape(-1)
            std = np.ones(f, np.float32) if scaler is None else np.asarray(scaler[1], np.float32).reshape(-1)
            self.register_buffer("scale_mean", torch.from_numpy(mean.copy()))
            self.register_buffer("scale_std", torch.from_numpy(std.copy()))
            self.head = estimator.network_
            # temperature scaling (serkit.models.calibration): softmax(z / T) == softmax(log p / T)
            self.inv_temperature = None if temperature is None else 1.0 / float(temperature)

        def forward(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
            t = mel.shape[2]
            mel_mask = (torch.arange(t, device=mel.device)[None, :] < mel_lengths[:, None]).to(mel.dtype)
            x = mel * mel_mask[:, None, :]
            h = nn.functional.gelu(self.conv1(x)) * mel_mask[:, None, :]
            h = nn.functional.gelu(self.conv2(h)).permute(0, 2, 1)
            frames = torch.div(mel_lengths + 1, 2, rounding_mode="floor")  # conv2: ceil(T / 2)
            tf = h.shape[1]
            mask = torch.arange(tf, device=h.device)[None, :] < frames[:, None]   # [B, T']
            h = h + self.positions.weight[:tf]
            bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
            bias = bias.masked_fill(~mask, torch.finfo(h.dtype).min)[:, None, None, :]
            states = [h]
            for layer in self.layers:
                h = layer(h, bias)
                if isinstance(h, tuple):
                    h = h[0]
                states.append(h)
            if self.final_norm:
                states[-1] = self.layer_norm(h)
            m = mask.to(h.dtype)[:, :, None]                       # [B, T', 1]
            n = m.sum(dim=1).clamp(min=1.0)                        # [B, 1]
            stats = []
            for i in self.selected:                                # masked mean (‖ std) per layer
                s = states[i]
                mean = (s * m).sum(dim=1) / n
                if self.mean_only:
                    stats.append(mean)
                    continue
                var = (((s - mean[:, None, :]) ** 2) * m).sum(dim=1) / n
                stats.append(torch.cat([mean, var.clamp(min=0).sqrt()], dim=-1))
            if self.average:
                feats = torch.stack(stats, dim=1).mean(dim=1)
            else:
                feats = torch.cat(stats, dim=-1)
            feats = (feats - self.scale_mean) / self.scale_std
            feats = torch.where(torch.isfinite(feats), feats, torch.zeros_like(feats))
            logits = self.head(feats)
            if self.inv_temperature is not None:
                logits = logits * self.inv_temperature
            return torch.softmax(logits, dim=-1)

    return WhisperHeadGraph().eval()


def _export_graph(module, path: Path, n_mels: int) -> None:
    import warnings

    import torch

    mel = torch.randn(2, n_mels, 64)
    lengths = torch.tensor([64, 41], dtype=torch.long)
    with torch.no_grad(), warnings.catch_warnings():
        # transformers' attention asks `q_length > 1 and attention_mask is None`: with a mask that is
        # False for every input, so the traced constant is right
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)   # see EXPORTER
        torch.onnx.export(
            module, (mel, lengths), str(path), dynamo=False, opset_version=OPSET,
            input_names=["mel", "mel_lengths"], output_names=["probabilities"],
            dynamic_axes={"mel": {0: "batch", 2: "frames"}, "mel_lengths": {0: "batch"},
                          "probabilities": {0: "batch"}})


def _check_graph(module, path: Path, n_mels: int, tol: float) -> float:
    """Largest |probability difference| between ONNX Runtime and torch on random log-mels of
    several lengths (batches with padding); ExportError above ``tol``."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for lens in ([300, 123, 2], [57], [1000, 999, 640, 31]):
        mel = np.zeros((len(lens), n_mels, max(lens)), np.float32)
        for i, n in enumerate(lens):
            mel[i, :, :n] = rng.uniform(-1.0, 1.5, size=(n_mels, n))
        lengths = np.asarray(lens, np.int64)
        with torch.no_grad():
            ref = module(torch.from_numpy(mel), torch.from_numpy(lengths)).numpy()
        (got,) = sess.run(None, {"mel": mel, "mel_lengths": lengths})
        worst = max(worst, float(np.abs(got - ref).max()))
    if not worst <= tol:
        raise ExportError(f"the exported graph differs from the torch model by {worst:.2g} (tolerance {tol})")
    return worst


def _quantize_int8(src: Path, dst: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                         per_channel=True)
    finally:
        root.setLevel(level)


# --------------------------------------------------------------------------- the directory
def _readme(card: dict[str, Any]) -> str:
    from serkit.inference.modelcard import render_card

    rt = card["runtime"]
    q = rt.get("quantization")
    lines = [render_card(card).rstrip(), "", "## ONNX export", "",
             f"Exported from `{rt['source']['name']}` by `serkit export` (serkit {card['serkit_version']}) "
             f"as one ONNX graph (opset {rt['opset']}): the Whisper encoder up to hidden state "
             f"{rt['encoder_depth']}, pooling, the fitted scaler and the head. "
             + ("Weights of the MatMul layers are quantised to int8 (ONNX Runtime dynamic "
                "quantisation, per channel); activations are quantised per batch at run time, so a "
                "clip's scores can shift slightly with the other clips of its batch. The evaluation "
                "figures above are those of the float32 model. " if q else "")
             + f"Largest difference from the torch model on the export check: "
             f"{rt['check']['max_abs_prob_diff']:.2g} (probability).", "",
             "Runs without torch: `pip install 'serkit[onnx]'`, then "
             "`serkit predict --model THIS_DIR clip.wav`.", "",
             "| graph input / output | shape | type |", "|---|---|---|"]
    for io in rt["inputs"] + rt["outputs"]:
        lines.append(f"| {io['name']} | [{', '.join(map(str, io['shape']))}] | {io['dtype']} |")
    return "\n".join(lines) + "\n"


def export_onnx(name_or_dir: str | Path | None, out: str | Path, *, quantize: str | None = None,
                tol: float = 1e-4, log: Callable[[str], None] | None = None) -> Path:
    """Export a model directory (or installed model name; None: the default model) to ``out``.

    Returns the written directory. Raises :class:`ExportError` (a :class:`ModelError`) for models
    that cannot be exported and when the exported graph does not reproduce the torch model within
    ``tol`` (``quantize="int8"``: the float32 graph is checked, then quantised).
    """
    from serkit.inference.predictor import Predictor

    say = log or (lambda _msg: None)
    if quantize not in (None, "int8"):
        raise ExportError(f"unknown quantisation {quantize!r} (int8, or none)")
    if importlib.util.find_spec("onnx") is None:
        raise ExportError("exporting needs the onnx package: pip install 'serkit[onnx]'")
    src = resolve_model(name_or_dir)
    out = Path(out)
    if out.resolve() == src.resolve():
        raise ExportError(f"{out}: the output directory is the model being exported")
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty (choose a new directory)")
    if (read_card(src).get("runtime") or {}).get("name") == RUNTIME:
        raise ExportError(f"{src}: cannot export to ONNX: it is already an ONNX export. Supported: {EXPORTABLE}.")
    say(f"loading {src}")
    from serkit.config import InferenceConfig

    # the torch model itself, in float32 (verifies the backbone's weights checksum)
    pred = Predictor.load(src, inference=InferenceConfig(runtime="torch", precision="fp32"))
    card, pipeline, est = pred.card, pred.pipeline, pred.estimator
    from serkit.models.calibration import TemperatureScaled

    temperature = est.temperature if isinstance(est, TemperatureScaled) else None
    head = est.estimator if temperature is not None else est
    _check_exportable(card, pipeline, head, src)
    ext = pipeline.extractors[0]
    backbone = ext.load()
    if backbone.kind != "whisper":
        raise ExportError(f"{src}: cannot export to ONNX: the backbone {ext.backbone!r} is not a "
                          f"Whisper encoder. Supported: {EXPORTABLE}.")
    if float(getattr(backbone.feature_extractor, "dither", 0.0) or 0.0) != 0.0:
        raise ExportError(f"{src}: the Whisper feature extractor adds dither, which the export cannot reproduce")
    module = _graph_module(backbone, ext.layers, ext.pooling, head, temperature)
    n_mels = int(backbone.model.config.num_mel_bins)

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _write(out, src, card, pipeline, est, backbone, module, n_mels, quantize, tol, say)
    except BaseException:
        if created:   # leave nothing half-written behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    say(f"written: {out}")
    return out


def _write(out: Path, src: Path, card: dict[str, Any], pipeline, est, backbone, module, n_mels: int,
           quantize: str | None, tol: float, say: Callable[[str], None]) -> None:
    import serkit

    fe = backbone.feature_extractor
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        say(f"exporting the graph (encoder up to hidden state {module.depth}, pooling, scaler, head)")
        _export_graph(module, fp32, n_mels)
        say("checking ONNX Runtime against torch")
        diff = _check_graph(module, fp32, n_mels, tol)
        final = fp32
        if quantize == "int8":
            say("quantising MatMul weights to int8")
            final = Path(tmp) / "model.int8.onnx"
            _quantize_int8(fp32, final)
        shutil.move(str(final), out / "model.onnx")
    np.save(out / "mel_filters.npy", np.asarray(fe.mel_filters, np.float32), allow_pickle=False)

    n = len(est.classes_)
    params = dict(pipeline.streams_spec[0][1])
    bb = {k: v for k, v in (card.get("backbone") or {}).items() if k != "checksum"}
    runtime = {
        "name": RUNTIME, "graph": "model.onnx", "sha256": file_sha256(out / "model.onnx"),
        "opset": OPSET, "exporter": EXPORTER,
        "inputs": INPUTS, "outputs": [{"name": "probabilities", "dtype": "float32", "shape": ["batch", n],
                                       "doc": "softmax over `classes` (of the logits divided by `temperature` when the model is temperature-scaled)"}],
        "log_mel": {"n_fft": int(fe.n_fft), "hop_length": int(fe.hop_length), "n_mels": n_mels,
                    "filters": "mel_filters.npy",
                    "max_frames": 2 * int(backbone.model.config.max_source_positions)},
        "encoder_depth": module.depth, "num_threads": int(params.get("num_threads", 2) or 0),
        "temperature": (None if module.inv_temperature is None else 1.0 / module.inv_temperature),
        "quantization": ({"method": "onnxruntime.quantization.quantize_dynamic", "weights": "int8",
                          "per_channel": True, "ops": ["MatMul"],
                          "note": "activations are quantised per batch at run time, so a clip's scores "
                                  "can shift slightly with the other clips of its batch"}
                         if quantize == "int8" else None),
        "check": {"max_abs_prob_diff": diff, "tolerance": tol, "against": "torch, float32 graph"},
        "source": {"name": card.get("name"), "serkit_version": card.get("serkit_version"),
                   "backbone_checksum": (card.get("backbone") or {}).get("checksum"),
                   "estimator": est.network},
    }
    suffix = "-onnx-int8" if quantize == "int8" else "-onnx"
    meta = {**card, "format": FORMAT, "serkit_version": serkit.__version__,
            "name": f"{card.get('name', src.name)}{suffix}", "backbone": bb or None,
            "estimator": None, "runtime": runtime}
    (out / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    (out / "README.md").write_text(_readme(meta))
    if (src / "config.yaml").is_file():
        shutil.copy(src / "config.yaml", out / "config.yaml")
