"""The fine-tuning network (backbone → pooling → head) and how to rebuild it without downloads.

Inference-side half of :mod:`serkit.models.nn.finetune` (which trains it): nothing here imports the
training engine, so a saved fine-tuned model can be loaded by :mod:`serkit.inference`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from serkit.config import SAMPLE_RATE
from serkit.models.nn.heads import build_head
from serkit.models.nn.pooling import build_pooling

__all__ = ["FineTuneNetwork", "FineTunePredictor", "as_waveforms", "backbone_spec", "rebuild_backbone"]


def as_waveforms(X) -> list[np.ndarray]:
    """A list of 1-D float32 arrays from a list / object array / 2-D array of waveforms."""
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 1:
            X = X[None]
        return [np.asarray(x, dtype=np.float32).reshape(-1) for x in X.reshape(len(X), -1)]
    return [np.asarray(x, dtype=np.float32).reshape(-1) for x in X]


class FineTuneNetwork(nn.Module):
    """Backbone + pooling + head; ``forward(wavs)`` takes a list of 1-D arrays."""

    def __init__(self, backbone, n_classes: int, pooling: str = "attention", head: str = "mlp_000",
                 layer: int = -1, train_layers: int | None = None, head_params: dict | None = None,
                 head_lr: float | None = None):
        super().__init__()
        self.backbone = backbone
        self.layer = layer
        self.pool = build_pooling(pooling, backbone.hidden_size)
        dim = backbone.hidden_size * (2 if pooling == "meanstd" else 1)
        self.head = build_head(head, dim, n_classes, **(head_params or {}))
        self.set_trainable(train_layers)
        self.last_attention: torch.Tensor | None = None
        # read by the training engine: the freshly initialised pooling + head may learn faster
        self.layer_lr = {} if head_lr is None else {"pool": float(head_lr), "head": float(head_lr)}

    def set_trainable(self, train_layers: int | None) -> None:
        bb = self.backbone
        if train_layers is None:
            bb.requires_grad_(True)
        else:
            bb.requires_grad_(False)
            blocks = bb.transformer_layers()
            k = max(0, min(int(train_layers), len(blocks)))
            for block in list(blocks)[len(blocks) - k:]:
                block.requires_grad_(True)
        bb.freeze_feature_encoder()  # the CNN front end always stays frozen

    def pooled(self, wavs) -> torch.Tensor:
        hidden, mask = self.backbone.forward_layers(list(wavs))
        h = hidden[self.layer].float()
        out = self.pool(h, mask)
        w = getattr(self.pool, "last_weights", None)
        self.last_attention = None if w is None else w.detach().cpu()
        return out

    def embed(self, wavs) -> torch.Tensor:
        return self.head.embed(self.pooled(wavs))

    def forward(self, wavs) -> torch.Tensor:
        return self.head(self.pooled(wavs))



def backbone_spec(bb) -> dict[str, Any]:
    """What :func:`rebuild_backbone` needs to recreate ``bb``'s architecture (no weights)."""
    fe = bb.feature_extractor
    return {"config": bb.model.config.to_dict(), "kind": bb.kind, "name": bb.name,
            "fe_class": type(fe).__name__, "fe": fe.to_dict()}


def rebuild_backbone(spec: dict[str, Any]):
    """A randomly initialised :class:`~serkit.backbones.Backbone` with the saved architecture."""
    import transformers
    from transformers import AutoConfig, AutoModel, WhisperModel

    from serkit.backbones import Backbone

    cfg_dict = dict(spec["config"])
    model_type = cfg_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg_dict)
    model = WhisperModel(config).get_encoder() if spec["kind"] == "whisper" else AutoModel.from_config(config)
    if not str(spec["fe_class"]).endswith("FeatureExtractor"):
        raise ValueError(f"unexpected feature extractor class {spec['fe_class']!r}")
    fe = getattr(transformers, spec["fe_class"]).from_dict(dict(spec["fe"]))
    return Backbone(model, fe, spec["kind"], spec["name"]).eval()


class FineTunePredictor:
    """Inference half of :class:`~serkit.models.nn.finetune.FineTuneClassifier`: a fitted
    :class:`FineTuneNetwork` (``network_``) over raw 16 kHz waveforms, and ``classes_``."""

    max_seconds: float | None = None
    eval_batch_size: int = 8
    accelerator: str = "auto"
    pooling: str = "attention"

    def _wavs(self, X) -> list[np.ndarray]:
        wavs = as_waveforms(X)
        if self.max_seconds:
            n = int(self.max_seconds * SAMPLE_RATE)
            wavs = [w[:n] for w in wavs]
        return wavs

    def _device(self) -> torch.device:
        use_gpu = self.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        return torch.device("cuda" if use_gpu else "cpu")

    @torch.inference_mode()
    def _run(self, X, fn: str) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise RuntimeError("call fit() first")
        net = self.network_.to(self._device()).eval()
        wavs = self._wavs(X)
        out = []
        for i in range(0, len(wavs), self.eval_batch_size):
            chunk = wavs[i:i + self.eval_batch_size]
            out.append((net(chunk) if fn == "forward" else net.embed(chunk)).float().cpu())
        self.network_ = net.cpu()
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes_)), np.float32)

    def decision_function(self, X) -> np.ndarray:
        return self._run(X, "forward")

    def predict_proba(self, X) -> np.ndarray:
        logits = torch.from_numpy(self._run(X, "forward"))
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    def embed(self, X) -> np.ndarray:
        """Penultimate representation of the head ``(n, d)``."""
        return self._run(X, "embed")

    @torch.inference_mode()
    def attention(self, X) -> list[np.ndarray] | None:
        """Attention-pooling weights over each utterance's own frames (None for mean pooling)."""
        if self.pooling != "attention":
            return None
        net = self.network_.to(self._device()).eval()
        wavs, out = self._wavs(X), []
        for i in range(0, len(wavs), self.eval_batch_size):
            net(wavs[i:i + self.eval_batch_size])
            for w in net.last_attention.float().numpy():
                valid = np.flatnonzero(w > 0)  # padded frames get exactly zero weight
                out.append(w[: valid[-1] + 1] if valid.size else w)
        self.network_ = net.cpu()
        return out

    # ------------------------------------------------------------------ persistence
    # (wav2vec2-family positional convolutions use weight-norm parametrisations, which torch refuses
    # to pickle; a fitted model is stored as backbone config + feature extractor + weights)
    def export_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        net = self.network_
        spec = {"backbone_spec": backbone_spec(net.backbone), "classes": [str(c) for c in self.classes_],
                "pooling": self.pooling, "head": self.head, "head_params": dict(self.head_params or {}),
                "layer": int(self.layer), "max_seconds": self.max_seconds,
                "eval_batch_size": int(self.eval_batch_size)}
        arrays = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return spec, arrays

    @classmethod
    def from_export_state(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> "FineTunePredictor":
        self = cls.__new__(cls)
        for k in ("pooling", "head", "head_params", "layer", "max_seconds", "eval_batch_size"):
            setattr(self, k, spec[k])
        self.classes_ = np.asarray(spec["classes"])
        self.accelerator = "cpu"
        bb = rebuild_backbone(spec["backbone_spec"])
        net = FineTuneNetwork(bb, len(self.classes_), pooling=self.pooling, head=self.head,
                              layer=self.layer, train_layers=0, head_params=self.head_params)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.network_ = net.eval()
        return self
