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
from torch.utils.data import DataLoader, Dataset

from serkit.config import SAMPLE_RATE
from serkit.models.nn.finetune_net import FineTuneNetwork, FineTunePredictor

__all__ = ["FineTuneNetwork", "FineTuneClassifier", "as_waveforms", "finetune_classifier"]


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


class FineTuneClassifier(FineTunePredictor, ClassifierMixin, BaseEstimator):
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

    def preflight(self, sample, n_classes: int) -> None:
        """Check pooling, head and schedule names without loading the backbone."""
        from serkit.models.nn.heads import build_head
        from serkit.models.nn.pooling import build_pooling

        build_pooling(self.pooling, 8)
        build_head(self.head, 16 if self.pooling == "meanstd" else 8, n_classes, **(self.head_params or {}))
        if self.scheduler not in (None, "plateau", "warmup_exp", "warmup_cosine"):
            raise ValueError(f"scheduler must be warmup_cosine, warmup_exp, plateau or null, got "
                             f"{self.scheduler!r}")

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


def finetune_classifier(params: dict[str, Any], seed: int) -> FineTuneClassifier:
    """The ``ssl_finetune`` model of :data:`serkit.models.registry.MODELS`."""
    return FineTuneClassifier(seed=seed, **params)
