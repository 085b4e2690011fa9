"""scikit-learn wrapper around the torch networks: :class:`TorchClassifier`.

``TorchClassifier(network="cnn4", network_params={...}, lr=1e-3, ...)`` follows the estimator rules
(parameters stored untouched in ``__init__``, fitted attributes end in ``_``, ``fit`` returns self), so
``sklearn.base.clone``, ``GroupKFold`` and ``GridSearchCV`` work with it.

Input shapes by network kind: see :mod:`serkit.models.torch_network`. Standardisation is fitted on the training part: one global mean / std for spectrogram-like inputs,
per-feature mean / std for vectors and scalars.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils.class_weight import compute_class_weight

from serkit.models.nn.cnn import SpectrogramCNN
from serkit.models.nn.registry import build_network
from serkit.models.torch_network import TorchNetworkPredictor
from serkit.training.augmentation import build_spec_augment
from serkit.training.engine import ArrayDataset, TrainConfig, encode_labels, fit_network


def _take(X, idx):
    if isinstance(X, Mapping):
        return {k: v[idx] for k, v in X.items()}
    return X[idx]


def _concat(a, b):
    if isinstance(a, Mapping):
        return {k: np.concatenate([a[k], b[k]]) for k in a}
    return np.concatenate([a, b])


def _n_samples(X) -> int:
    return len(next(iter(X.values()))) if isinstance(X, Mapping) else len(X)


class TorchClassifier(TorchNetworkPredictor, ClassifierMixin, BaseEstimator):
    """Classifier around a registered network, trained by :func:`serkit.training.engine.fit_network`.

    Parameters
    ----------
    network : registry name (``serkit.models.nn.NETWORKS``).
    network_params : extra keyword arguments of the network factory.
    optimizer, lr, weight_decay : "adam" / "adamw", learning rate, weight decay.
    batch_size, max_epochs, patience : mini-batch size, epoch cap, early-stopping patience (None: off).
    label_smoothing : cross-entropy label smoothing.
    class_weight : None, "balanced" or ``{label: weight}``.
    grad_clip : max gradient norm (None: off).
    scheduler, scheduler_params : "plateau" (factor .5, patience 3), "warmup_exp", "warmup_cosine" or
        None; ``scheduler_params`` sets ``TrainConfig`` fields such as ``warmup_steps``.
    val_fraction : share of the training data held out for early stopping / checkpoint selection,
        speaker-grouped when ``fit`` gets ``groups`` with at least two speakers, else stratified.
    augment : spectrogram augmentation spec ``{name: params}`` (training step only).
    pretrain : greedy layer-wise autoencoder pretraining params (``{"epochs": 50}``) or None.
    standardize : fit mean / std on the training part.
    seed : seeds weight init, split, shuffling and augmentation.
    accelerator, devices, strategy, precision : passed to ``lightning.Trainer``.
    checkpoint_dir : where ``best.ckpt`` / ``last.ckpt`` go; an existing ``last.ckpt`` is resumed.
        Use one directory per fold / model.
    num_workers : DataLoader workers.
    eval_batch_size : batch size of ``predict_proba`` / ``embed``.
    progress_bar : None (only on a TTY), True or False.
    bn_recalibration : number of training batches on which BatchNorm statistics are re-estimated
        with dropout off before each validation and after training (0: off); see ``TrainConfig``.
    """

    def __init__(self, network: str = "cnn4", network_params: dict[str, Any] | None = None, *,
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int = 64, max_epochs: int = 50, patience: int | None = 10,
                 label_smoothing: float = 0.0, class_weight: str | dict | None = None,
                 grad_clip: float | None = None, scheduler: str | None = "plateau",
                 scheduler_params: dict[str, Any] | None = None, val_fraction: float = 0.15,
                 augment: dict[str, Any] | None = None, pretrain: dict[str, Any] | None = None,
                 standardize: bool = True, seed: int = 0, accelerator: str = "auto",
                 devices: int | str = "auto", strategy: str = "auto", precision: str = "32-true",
                 checkpoint_dir: str | None = None, num_workers: int = 0, eval_batch_size: int = 256,
                 progress_bar: bool | None = None, bn_recalibration: int = 0) -> None:
        self.network = network
        self.network_params = network_params
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.grad_clip = grad_clip
        self.scheduler = scheduler
        self.scheduler_params = scheduler_params
        self.val_fraction = val_fraction
        self.augment = augment
        self.pretrain = pretrain
        self.standardize = standardize
        self.seed = seed
        self.accelerator = accelerator
        self.devices = devices
        self.strategy = strategy
        self.precision = precision
        self.checkpoint_dir = checkpoint_dir
        self.num_workers = num_workers
        self.eval_batch_size = eval_batch_size
        self.progress_bar = progress_bar
        self.bn_recalibration = bn_recalibration

    @staticmethod
    def _stats(a: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
        a = a.astype(np.float64)
        if per_feature:
            mean, std = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
        else:
            mean, std = np.asarray(np.nanmean(a)), np.asarray(np.nanstd(a))
        std = np.where(std < 1e-8, 1.0, std)
        return mean.astype(np.float32), std.astype(np.float32)

    def _fit_scaler(self, X) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not self.standardize:
            return {}
        if isinstance(X, Mapping):
            return {"spec": self._stats(X["spec"], False), "scalars": self._stats(X["scalars"], True)}
        return {"x": self._stats(X, self._kind() == "vector")}

    # ------------------------------------------------------------------------------------- fitting
    def _split(self, y: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(y)
        idx = np.arange(n)
        if not self.val_fraction or self.val_fraction <= 0 or n < 4:
            return idx, None
        if groups is not None and len(np.unique(np.asarray(groups))) >= 2:
            splitter = GroupShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.seed)
            tr, va = next(splitter.split(idx, y, np.asarray(groups)))
            return tr, va
        try:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=self.val_fraction,
                                              random_state=self.seed)
            return next(splitter.split(idx, y))
        except ValueError:  # a class too small to stratify
            splitter = ShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.seed)
            return next(splitter.split(idx))

    def _class_weights(self, y_idx: np.ndarray) -> list[float] | None:
        if self.class_weight is None:
            return None
        k = len(self.classes_)
        if self.class_weight == "balanced":
            present = np.unique(y_idx)
            w = np.ones(k)
            w[present] = compute_class_weight("balanced", classes=present, y=y_idx)
            return w.tolist()
        if isinstance(self.class_weight, Mapping):
            return [float(self.class_weight.get(c, 1.0)) for c in self.classes_]
        raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {self.class_weight!r}")

    def _train_config(self, class_weights=None) -> TrainConfig:
        config = TrainConfig(
            optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay,
            max_epochs=self.max_epochs, patience=self.patience, label_smoothing=self.label_smoothing,
            class_weights=class_weights, grad_clip=self.grad_clip,
            scheduler=self.scheduler, seed=self.seed, accelerator=self.accelerator,
            devices=self.devices, strategy=self.strategy, precision=self.precision,
            checkpoint_dir=None if self.checkpoint_dir is None else os.fspath(self.checkpoint_dir),
            progress_bar=self.progress_bar, bn_recalibration=self.bn_recalibration)
        for key, value in (self.scheduler_params or {}).items():
            if not hasattr(config, key):
                raise ValueError(f"unknown scheduler/training parameter {key!r}")
            setattr(config, key, value)
        return config

    def preflight(self, sample, n_classes: int) -> None:
        """Build the network for one input row and check the training settings (no training)."""
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.scheduler not in (None, "plateau", "warmup_exp", "warmup_cosine"):
            raise ValueError(f"scheduler must be plateau, warmup_exp, warmup_cosine or null, got "
                             f"{self.scheduler!r}")
        self._train_config()
        build_spec_augment(self.augment, seed=self.seed)
        X = self._shape_input({k: np.asarray(v)[None] for k, v in sample.items()}
                              if isinstance(sample, Mapping) else np.asarray(sample)[None])
        shape = {k: v.shape[1:] for k, v in X.items()} if isinstance(X, Mapping) else X.shape[1:]
        try:
            build_network(self.network, n_classes, shape, **(self.network_params or {}))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"network {self.network!r} cannot be built for input shape {shape}: "
                             f"{exc}") from None

    #: the run pipeline passes a protocol's validation speakers (speaker_holdout) as ``validation``
    accepts_validation = True

    def fit(self, X, y, groups=None, validation=None) -> TorchClassifier:
        """Train; validation for early stopping is ``validation=(X_val, y_val)`` when given, else a
        split held out from ``X`` (speaker-grouped when ``groups`` is given)."""
        y = np.asarray(y).astype(str)
        self.classes_ = np.unique(y)
        y_idx = np.searchsorted(self.classes_, y)
        X = self._shape_input(X)
        if _n_samples(X) != len(y):
            raise ValueError(f"X has {_n_samples(X)} samples, y has {len(y)}")
        if validation is not None:
            X_val, y_val = validation
            n = len(y)
            X = _concat(X, self._shape_input(X_val))
            y_idx = np.concatenate([y_idx, encode_labels(self.classes_, y_val)])
            tr, va = np.arange(n), np.arange(n, len(y_idx))
        else:
            tr, va = self._split(y_idx, groups)
        self.scaler_ = self._fit_scaler(_take(X, tr))
        X = self._transform(X)
        X_tr, X_va = _take(X, tr), (None if va is None else _take(X, va))

        L.seed_everything(self.seed, workers=True, verbose=False)
        sample = {k: v.shape[1:] for k, v in X.items()} if isinstance(X, Mapping) else X.shape[1:]
        self.input_shape_ = sample
        net = build_network(self.network, len(self.classes_), sample, **(self.network_params or {}))
        if self.pretrain:
            if not isinstance(net, SpectrogramCNN):
                raise ValueError(f"autoencoder pretraining needs a SpectrogramCNN, not {self.network!r}")
            from serkit.models.nn.autoencoder import greedy_layerwise_pretrain
            self.pretrain_losses_ = greedy_layerwise_pretrain(
                net, X_tr, seed=self.seed, **{"batch_size": self.batch_size, **dict(self.pretrain)})

        config = self._train_config(self._class_weights(y_idx[tr]))
        augment = build_spec_augment(self.augment, seed=self.seed)
        result = fit_network(
            net, ArrayDataset(X_tr, y_idx[tr]),
            None if va is None else ArrayDataset(X_va, y_idx[va]), config,
            batch_size=self.batch_size, num_workers=self.num_workers, augment=augment)
        self.network_ = net.cpu().eval()
        self.history_ = result.history
        self.n_epochs_ = result.epochs_run
        self.start_epoch_ = result.start_epoch
        self.best_epoch_ = result.best_epoch
        self.stopped_early_ = result.stopped_early
        self.precision_ = result.precision
        self.gradcam_target_ = getattr(net, "gradcam_layer", None)
        self.n_train_, self.n_val_ = len(tr), (0 if va is None else len(va))
        # rows of the X given to fit that were held out for early stopping (None: none were, or
        # the validation came from the caller); calibration may be fitted on them
        self.val_index_ = None if validation is not None or va is None else np.asarray(va)
        return self
