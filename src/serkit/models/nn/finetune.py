"""Fine-tuning a pretrained speech encoder end to end on raw waveforms (studies 000-003).

:class:`FineTuneClassifier` is a scikit-learn estimator over raw 16 kHz waveforms: ``X`` is an
object array / list of 1-D float32 arrays (any lengths) or a 2-D array ``[n, samples]`` (the
``waveform`` feature kind with ``audio.duration_s``). The network is

    backbone (:func:`serkit.backbones.load_backbone`) → hidden state ``layer`` → pooling
    (attention / mean / meanstd, masked) → head (:data:`serkit.models.nn.heads.HEADS`)

The convolutional feature encoder is frozen; the top ``train_layers`` transformer blocks are
trained (``None``: all of them plus the projection / positional layers; ``0``: none, a frozen
backbone). Training goes through :func:`serkit.training.engine.fit_network` (Lightning): AdamW,
linear warm-up then cosine (``scheduler="warmup_cosine"``) or exponential (``"warmup_exp"``,
study 002) decay, label smoothing, gradient accumulation, 16-bit mixed precision on GPU only,
checkpoints in ``checkpoint_dir`` (``last.ckpt`` is resumed by a later ``fit``).

Recipes (configs/seeds/):

* study 000: ``backbone=facebook/wav2vec2-base, pooling=attention, head=mlp_000, train_layers=None,
  lr=3e-5, weight_decay=.01, batch_size=8, max_epochs=15``
* study 001: ``pooling=mean, head=mlp_001, train_layers=2, lr=1e-4, label_smoothing=.1, max_epochs=10``
* study 002: ``backbone=jonatasgrosman/wav2vec2-large-xlsr-53-english, pooling=mean, head=linear,
  scheduler=warmup_exp, warmup_steps=1000, lr=1e-4, max_epochs=2``
* study 003: ``pooling=mean, head=w2v2_003, train_layers=5, lr=1e-4, label_smoothing=.08,
  batch_size=32, patience=5``
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from torch import nn
from torch.utils.data import DataLoader, Dataset

from serkit.models.nn.heads import build_head
from serkit.models.nn.pooling import build_pooling

__all__ = ["FineTuneNetwork", "FineTuneClassifier", "as_waveforms", "register_models"]


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


class _WavDataset(Dataset):
    def __init__(self, wavs: list[np.ndarray], y: np.ndarray | None = None):
        self.wavs, self.y = wavs, y

    def __len__(self) -> int:
        return len(self.wavs)

    def __getitem__(self, i):
        return self.wavs[i], (-1 if self.y is None else int(self.y[i]))


def _collate(batch):
    # waveforms stay numpy (Backbone.forward_layers pads them and moves them to its device)
    return [b[0] for b in batch], torch.tensor([b[1] for b in batch], dtype=torch.long)


class FineTuneClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a speech encoder + pooling + head on raw waveforms (see module docstring).

    Parameters
    ----------
    backbone : str
        Hub id, local folder or offline name for :func:`serkit.backbones.load_backbone`.
    pooling : {"attention", "mean", "meanstd"}
    head : str
        :data:`serkit.models.nn.heads.HEADS` name; ``head_params`` go to its factory.
    layer : int
        Hidden state fed to the pooling (-1: last transformer layer).
    train_layers : int or None
        Top transformer blocks to train (None: all; 0: frozen backbone).
    optimizer, lr, weight_decay, label_smoothing, grad_clip : optimisation.
    head_lr : float or None
        Learning rate of the (randomly initialised) pooling and head; None: ``lr`` for everything.
        Schedules scale it like ``lr``.
    scheduler : {"warmup_cosine", "warmup_exp", "plateau", None}
        Linear warm-up then cosine / exponential decay (per optimiser step).
    warmup_steps : int or None
        Warm-up optimiser steps; None: ``warmup_ratio`` of all steps.
    decay_gamma : float
        Per-step factor of ``warmup_exp``.
    batch_size, accumulate_grad_batches, max_epochs, patience : batching and stopping.
    val_fraction : float
        Held-out share for checkpoint selection / early stopping; speaker-grouped when ``fit`` gets
        ``groups`` (≥ 2 speakers), else stratified; 0 disables validation.
    max_seconds : float or None
        Crop longer waveforms (from the start) to this length.
    precision : str
        ``"16-mixed"`` (default) on GPU; CPU always runs 32-bit.
    checkpoint_dir : str or None
        Lightning checkpoints (``best.ckpt``, ``last.ckpt``); an existing ``last.ckpt`` is resumed.
    num_threads : int
        CPU threads for torch (0 leaves torch's setting alone).
    """

    accepts_groups = True
    #: the run pipeline passes a protocol's validation speakers (speaker_holdout) as ``validation``
    accepts_validation = True

    def __init__(self, backbone: str = "facebook/wav2vec2-base", pooling: str = "attention",
                 head: str = "mlp_000", head_params: dict[str, Any] | None = None, layer: int = -1,
                 train_layers: int | None = None, optimizer: str = "adamw", lr: float = 3e-5,
                 head_lr: float | None = None,
                 weight_decay: float = 0.01, label_smoothing: float = 0.0, grad_clip: float | None = 1.0,
                 scheduler: str | None = "warmup_cosine", warmup_steps: int | None = None,
                 warmup_ratio: float = 0.1, decay_gamma: float = 0.999, batch_size: int = 8,
                 accumulate_grad_batches: int = 1, max_epochs: int = 15, patience: int | None = None,
                 val_fraction: float = 0.1, max_seconds: float | None = None, seed: int = 42,
                 accelerator: str = "auto", devices: int | str = "auto", precision: str = "16-mixed",
                 checkpoint_dir: str | None = None, eval_batch_size: int = 8, num_threads: int = 0,
                 progress_bar: bool | None = None):
        self.backbone = backbone
        self.pooling = pooling
        self.head = head
        self.head_params = head_params
        self.layer = layer
        self.train_layers = train_layers
        self.optimizer = optimizer
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.grad_clip = grad_clip
        self.scheduler = scheduler
        self.warmup_steps = warmup_steps
        self.warmup_ratio = warmup_ratio
        self.decay_gamma = decay_gamma
        self.batch_size = batch_size
        self.accumulate_grad_batches = accumulate_grad_batches
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.max_seconds = max_seconds
        self.seed = seed
        self.accelerator = accelerator
        self.devices = devices
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.eval_batch_size = eval_batch_size
        self.num_threads = num_threads
        self.progress_bar = progress_bar

    # ------------------------------------------------------------------ helpers
    def _wavs(self, X) -> list[np.ndarray]:
        wavs = as_waveforms(X)
        if self.max_seconds:
            n = int(self.max_seconds * 16000)
            wavs = [w[:n] for w in wavs]
        return wavs

    def _split(self, y_idx: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray | None]:
        idx = np.arange(len(y_idx))
        if not self.val_fraction or self.val_fraction <= 0:
            return idx, None
        try:
            if groups is not None and len(np.unique(groups)) >= 2:
                sp = GroupShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.seed)
                tr, va = next(sp.split(idx, y_idx, np.asarray(groups)))
            else:
                sp = StratifiedShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.seed)
                tr, va = next(sp.split(idx, y_idx))
        except ValueError:  # too few samples per class / group to split
            return idx, None
        return tr, va

    def _build(self, n_classes: int) -> FineTuneNetwork:
        from serkit.backbones import load_backbone

        bb = load_backbone(self.backbone)
        return FineTuneNetwork(bb, n_classes, pooling=self.pooling, head=self.head, layer=self.layer,
                               train_layers=self.train_layers, head_params=self.head_params,
                               head_lr=self.head_lr)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, groups=None, validation=None) -> FineTuneClassifier:
        """Train; the validation set (checkpoint selection / early stopping) is ``validation=(X_val,
        y_val)`` when given (all of ``X`` is then trained on), else a ``val_fraction`` split of ``X``
        grouped by ``groups``."""
        from serkit.training.engine import TrainConfig, encode_labels, fit_network

        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        wavs = self._wavs(X)
        y = np.asarray(y).astype(str)
        if len(wavs) != len(y):
            raise ValueError(f"X has {len(wavs)} waveforms, y has {len(y)}")
        self.classes_ = np.unique(y)
        y_idx = np.searchsorted(self.classes_, y)
        if validation is not None:
            X_val, y_val = validation
            n = len(wavs)
            wavs = wavs + self._wavs(X_val)
            y_idx = np.concatenate([y_idx, encode_labels(self.classes_, y_val)])
            tr, va = np.arange(n), np.arange(n, len(wavs))
        else:
            tr, va = self._split(y_idx, groups)

        torch.manual_seed(self.seed)
        net = self._build(len(self.classes_))
        gen = torch.Generator().manual_seed(self.seed)
        train_loader = DataLoader(_WavDataset([wavs[i] for i in tr], y_idx[tr]), batch_size=self.batch_size,
                                  shuffle=True, collate_fn=_collate, generator=gen)
        val_loader = None if va is None else DataLoader(
            _WavDataset([wavs[i] for i in va], y_idx[va]), batch_size=self.eval_batch_size,
            shuffle=False, collate_fn=_collate)
        steps = math.ceil(len(tr) / self.batch_size / max(1, self.accumulate_grad_batches)) * self.max_epochs
        warm = self.warmup_steps if self.warmup_steps is not None else int(self.warmup_ratio * steps)
        config = TrainConfig(
            optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay,
            max_epochs=self.max_epochs, patience=self.patience, label_smoothing=self.label_smoothing,
            grad_clip=self.grad_clip, scheduler=self.scheduler, warmup_steps=int(warm),
            decay_gamma=self.decay_gamma, seed=self.seed, accelerator=self.accelerator,
            devices=self.devices, precision=self.precision if self._device().type == "cuda" else "32-true",
            checkpoint_dir=None if self.checkpoint_dir is None else os.fspath(self.checkpoint_dir),
            progress_bar=self.progress_bar,
            trainer_kwargs={"accumulate_grad_batches": int(self.accumulate_grad_batches)})
        result = fit_network(net, train_loader, val_loader, config)
        self.network_ = net.cpu().eval()
        self.history_ = result.history
        self.n_epochs_ = result.epochs_run
        self.start_epoch_ = result.start_epoch
        self.best_epoch_ = result.best_epoch
        self.n_train_, self.n_val_ = len(tr), (0 if va is None else len(va))
        self.n_trainable_ = sum(p.numel() for p in net.parameters() if p.requires_grad)
        return self

    # ------------------------------------------------------------------ inference
    def _device(self) -> torch.device:
        use_gpu = self.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        return torch.device("cuda" if use_gpu else "cpu")

    @torch.inference_mode()
    def _run(self, X, fn: str) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise RuntimeError("call fit() first")
        net = self.network_.to(self._device()).eval()
        wavs = self._wavs(X)
        out, att = [], []
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

    # ------------------------------------------------------------------ pickling
    # wav2vec2-family positional convolutions use weight-norm parametrisations, which torch refuses
    # to pickle: a fitted estimator is stored as (backbone config, feature extractor, state_dict)
    # and rebuilt without downloading anything.
    def __getstate__(self):
        state = dict(self.__dict__)
        net = state.pop("network_", None)
        if net is not None:
            state["_network_state"] = {**backbone_spec(net.backbone), "n_classes": net.head.n_classes,
                                       "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}
        return state

    def __setstate__(self, state):
        spec = state.pop("_network_state", None)
        self.__dict__.update(state)
        if spec is not None:
            bb = rebuild_backbone(spec)
            net = FineTuneNetwork(bb, spec["n_classes"], pooling=self.pooling, head=self.head,
                                  layer=self.layer, train_layers=self.train_layers,
                                  head_params=self.head_params)
            net.load_state_dict(spec["state_dict"])
            self.network_ = net.eval()


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
    fe = getattr(transformers, spec["fe_class"]).from_dict(dict(spec["fe"]))
    return Backbone(model, fe, spec["kind"], spec["name"]).eval()


def register_models() -> None:
    """Register ``ssl_finetune`` and the ``head_*`` networks (idempotent).

    Adds :data:`serkit.models.nn.heads.NETWORK_ENTRIES` to ``NETWORKS`` and, for each, a
    ``TorchClassifier`` factory to ``MODELS`` (as ``registry._load_builtin`` does for every network).
    """
    from serkit.models.nn.heads import NETWORK_ENTRIES, register_networks
    from serkit.models.registry import MODELS

    MODELS.setdefault("ssl_finetune", lambda params, seed: FineTuneClassifier(seed=seed, **params))
    register_networks()
    from serkit.models.torch_estimator import TorchClassifier

    for net in NETWORK_ENTRIES:
        MODELS.setdefault(net, (lambda n: lambda params, seed: TorchClassifier(
            network=n, seed=seed, **params))(net))
