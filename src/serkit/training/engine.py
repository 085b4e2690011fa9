"""Training engine: any :class:`~serkit.models.nn.cnn.SERNetwork` trained with Lightning.

:func:`fit_network` builds a :class:`SERLightningModule` (cross-entropy with optional class weights and
label smoothing, Adam / AdamW with weight decay and per-layer overrides, ReduceLROnPlateau or warm-up +
exponential / cosine decay, training-time augmentation) and a ``lightning.Trainer`` with early stopping
on ``val_loss``, checkpointing (``best.ckpt`` + ``last.ckpt``; a later call with the same
``checkpoint_dir`` resumes from ``last.ckpt``), gradient clipping, deterministic seeding and a
per-epoch :class:`HistoryCallback`. After training the best weights (lowest ``val_loss``) are restored.

Devices: ``accelerator="auto"`` uses a GPU when there is one, else the CPU; ``devices`` and
``strategy`` are passed through, e.g. ``accelerator="gpu", devices=4, strategy="ddp"`` (multi-node:
add ``num_nodes`` in ``TrainConfig.trainer_kwargs`` and launch with ``torchrun`` / SLURM as Lightning
documents; give an explicit ``checkpoint_dir`` on shared storage so every rank sees the same
files). ``precision="16-mixed"`` / ``"bf16-mixed"`` apply on GPU. On CPU, ``"bf16-mixed"`` runs under
CPU autocast when the processor has native bfloat16 (AVX512-BF16 or AMX; about twice as fast for the
convolutional networks here); otherwise, and for float16 on CPU, precision falls back to 32-bit
with a warning.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, Dataset, Subset

from serkit.backbones.precision import cpu_has_native_bf16


@dataclass
class TrainConfig:
    """Every training hyper-parameter in one place (defaults: study 001's CNN recipe)."""

    optimizer: str = "adam"                 # "adam" | "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 50
    patience: int | None = 10               # early stopping on val_loss; None disables
    min_delta: float = 0.0
    label_smoothing: float = 0.0
    class_weights: list[float] | None = None
    grad_clip: float | None = None          # max gradient norm
    scheduler: str | None = "plateau"       # "plateau" | "warmup_exp" | "warmup_cosine" | None
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    warmup_steps: int = 0
    decay_gamma: float = 0.999              # per-step factor of "warmup_exp"
    min_lr_ratio: float = 0.0               # floor of "warmup_cosine"
    seed: int = 0
    deterministic: bool = True
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    precision: str = "32-true"
    checkpoint_dir: str | None = None
    resume: bool = True
    restore_best: bool = True
    progress_bar: bool | None = None        # None: only when stderr is a TTY
    # > 0: before every validation (and after training) re-estimate BatchNorm running statistics on
    # this many training batches with dropout off. Needed by networks that put dropout in front of a
    # later BatchNorm (study 003's 1-D CNN): the statistics gathered with dropout on do not match the
    # activations at evaluation, and the eval-mode logits blow up.
    bn_recalibration: int = 0
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)


def encode_labels(classes: np.ndarray, y, what: str = "validation") -> np.ndarray:
    """Indices of ``y`` in the sorted ``classes``; labels unseen in training are an error."""
    y = np.asarray(y).astype(str)
    unknown = sorted(set(y) - set(classes))
    if unknown:
        raise ValueError(f"{what} labels {unknown} do not occur in the training data")
    return np.searchsorted(classes, y)


class ArrayDataset(Dataset):
    """In-memory dataset over an array ``[N, ...]`` or a dict of arrays, with integer labels."""

    def __init__(self, X: np.ndarray | Mapping[str, np.ndarray], y: np.ndarray | None = None) -> None:
        if isinstance(X, Mapping):
            self.X = {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in X.items()}
            self.n = len(next(iter(self.X.values())))
        else:
            self.X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
            self.n = len(self.X)
        self.y = None if y is None else torch.as_tensor(np.asarray(y), dtype=torch.long)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        x = {k: v[i] for k, v in self.X.items()} if isinstance(self.X, dict) else self.X[i]
        return x if self.y is None else (x, self.y[i])


class SERLightningModule(L.LightningModule):
    """Wraps a network for classification training; augmentation runs in ``training_step`` only."""

    def __init__(self, network: nn.Module, config: TrainConfig,
                 augment: nn.Module | None = None, monitor: str = "val_loss") -> None:
        super().__init__()
        self.monitor = monitor
        self.network = network
        self.config = config
        self.augment = augment
        self.recalibration_data: Dataset | None = None   # training set, for bn_recalibration
        self.recalibration_batch_size = 64
        w = config.class_weights
        self.register_buffer("class_weights", None if w is None else torch.tensor(w, dtype=torch.float32))

    def forward(self, x):
        return self.network(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        if stage == "train" and self.augment is not None:
            x = self.augment(x)
        logits = self.network(x)
        loss = F.cross_entropy(logits.float(), y, weight=self.class_weights,
                               label_smoothing=self.config.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        n = y.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=True)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=stage == "val",
                 batch_size=n, sync_dist=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_start(self) -> None:
        self.recalibrate_batchnorm()

    @torch.no_grad()
    def recalibrate_batchnorm(self) -> None:
        """Re-estimate every BatchNorm's running mean / variance as the plain average over
        ``config.bn_recalibration`` random training batches, run with dropout off (as at evaluation)."""
        n_batches = self.config.bn_recalibration
        norms = [m for m in self.network.modules() if isinstance(m, _BatchNorm)]
        data = self.recalibration_data
        if not n_batches or not norms or data is None or len(data) == 0:
            return
        bs = self.recalibration_batch_size
        gen = torch.Generator().manual_seed(self.config.seed + 7919 * (self.current_epoch + 1))
        idx = torch.randperm(len(data), generator=gen)[: n_batches * bs].tolist()
        was_training = self.network.training
        momenta = [m.momentum for m in norms]
        self.network.eval()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None           # cumulative average over the recalibration batches
            m.train()
        try:
            for x, _ in DataLoader(Subset(data, idx), batch_size=bs):
                self.network(move_data_to_device(x, self.device))
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            self.network.train(was_training)

    def _param_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups: the network may set ``layer_weight_decay`` and ``layer_lr`` (dicts of
        parameter-name prefix → value) to override the config's weight decay / learning rate for
        some modules (e.g. a larger learning rate for a fresh head on a pretrained backbone)."""
        wd_over: dict[str, float] = getattr(self.network, "layer_weight_decay", {}) or {}
        lr_over: dict[str, float] = getattr(self.network, "layer_lr", {}) or {}

        def lookup(name: str, overrides: dict[str, float], default: float) -> float:
            value = default
            for prefix, v in overrides.items():
                if name == prefix or name.startswith(prefix + "."):
                    value = v
            return float(value)

        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        for name, p in self.network.named_parameters():
            if not p.requires_grad:
                continue
            key = (lookup(name, wd_over, self.config.weight_decay), lookup(name, lr_over, self.config.lr))
            groups.setdefault(key, []).append(p)
        return [{"params": ps, "weight_decay": wd, "lr": lr} for (wd, lr), ps in groups.items()]

    def configure_optimizers(self):
        c = self.config
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(c.optimizer.lower())
        if opt_cls is None:
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {c.optimizer!r}")
        opt = opt_cls(self._param_groups(), lr=c.lr)
        if not c.scheduler:
            return opt
        if c.scheduler == "plateau":
            monitor = self.monitor
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=c.plateau_factor, patience=c.plateau_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": monitor,
                                                       "interval": "epoch"}}
        if c.scheduler in ("warmup_exp", "warmup_cosine"):
            total = max(1, int(self.trainer.estimated_stepping_batches))
            warm = max(0, int(c.warmup_steps))

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                if c.scheduler == "warmup_exp":
                    return c.decay_gamma ** (step - warm)
                t = min(1.0, (step - warm) / max(1, total - warm))
                return c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        raise ValueError(f"unknown scheduler {c.scheduler!r}")


class HistoryCallback(Callback):
    """Records ``epoch, train_loss, val_loss, train_acc, val_acc, lr`` after every training epoch.

    Its state is saved in checkpoints, so a resumed run continues the same history.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._lr = float("nan")

    @property
    def state_key(self) -> str:
        return "HistoryCallback"

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = trainer.callback_metrics

        def get(key: str) -> float:
            v = m.get(key)
            return float(v) if v is not None else float("nan")

        row = {"epoch": trainer.current_epoch + 1, "train_loss": get("train_loss"),
               "val_loss": get("val_loss"), "train_acc": get("train_acc"), "val_acc": get("val_acc"),
               "lr": self._lr}
        self.history = [h for h in self.history if h["epoch"] < row["epoch"]] + [row]

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


@dataclass
class FitResult:
    history: list[dict[str, float]]
    epochs_run: int                 # epochs completed in total (including resumed ones)
    start_epoch: int                # epoch the run started from (> 0 after a resume)
    best_epoch: int | None
    best_val_loss: float | None
    stopped_early: bool
    checkpoint_dir: str | None
    precision: str = "32-true"      # what the trainer actually ran with (after any CPU fallback)


def _on_gpu(accelerator: str) -> bool:
    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


@contextlib.contextmanager
def _preserve_determinism_flag():
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@contextlib.contextmanager
def _quiet_lightning(verbose: bool):
    """Silence Lightning's info banners (GPU available, tips, restore messages) unless verbose."""
    if verbose:
        yield
        return
    names = ["lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
             "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def fit_network(network: nn.Module, train_data: Dataset | DataLoader,
                val_data: Dataset | DataLoader | None, config: TrainConfig, *,
                batch_size: int = 64, num_workers: int = 0, augment: nn.Module | None = None,
                ) -> FitResult:
    """Train ``network`` in place and return its history (see module docstring).

    ``train_data`` / ``val_data`` are datasets (wrapped into DataLoaders of ``batch_size``; the training
    loader is shuffled with a seeded generator) or ready DataLoaders.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    gen = torch.Generator().manual_seed(config.seed)

    def loader(data, shuffle):
        if data is None or isinstance(data, DataLoader):
            return data
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                          generator=gen if shuffle else None, persistent_workers=num_workers > 0)

    train_loader, val_loader = loader(train_data, True), loader(val_data, False)
    monitor = "val_loss" if val_loader is not None else "train_loss"
    gpu = _on_gpu(config.accelerator)
    precision = config.precision
    if not gpu and precision in ("16-mixed", "bf16-mixed", "16", "bf16", 16):
        if str(precision).startswith("bf16") and cpu_has_native_bf16():
            precision = "bf16-mixed"
        else:
            why = "needs a GPU" if not str(precision).startswith("bf16") else \
                "needs a CPU with native bfloat16 (AVX512-BF16 or AMX) or a GPU"
            warnings.warn(f"precision {precision!r} {why}; using 32-bit on CPU", stacklevel=2)
            precision = "32-true"

    tmp = None
    ckpt_dir = config.checkpoint_dir
    if ckpt_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="serkit-ckpt-")
        ckpt_dir = tmp.name
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    history_cb = HistoryCallback()
    ckpt_cb = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min",
                              save_top_k=1, enable_version_counter=False)
    # last.ckpt at the end of every epoch (Lightning runs checkpoint callbacks after validation and
    # early stopping, so it holds the epoch's whole state). Lightning's own save_last only follows the
    # monitored checkpoint, i.e. improvements: a resumed run would repeat every epoch since the last
    # one that lowered the validation loss.
    last_cb = ModelCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                              enable_version_counter=False)
    callbacks: list[Callback] = [history_cb, ckpt_cb, last_cb]
    early = None
    if config.patience is not None:
        early = EarlyStopping(monitor=monitor, patience=config.patience, min_delta=config.min_delta,
                              mode="min")
        callbacks.append(early)
    show_bar = sys.stderr.isatty() if config.progress_bar is None else bool(config.progress_bar)
    if show_bar:
        callbacks.append(TQDMProgressBar())

    network.train()
    module = SERLightningModule(network, config, augment, monitor=monitor)
    module.recalibration_data = train_loader.dataset
    module.recalibration_batch_size = getattr(train_loader, "batch_size", None) or batch_size
    last = Path(ckpt_dir) / "last.ckpt"
    resume_path = str(last) if (config.checkpoint_dir and config.resume and last.exists()) else None
    start_epoch = 0
    if resume_path:
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        start_epoch = int(state.get("epoch", -1)) + 1
    with _preserve_determinism_flag(), warnings.catch_warnings(), _quiet_lightning(show_bar):
        for msg in (".*does not have many workers.*", ".*exists and is not empty.*", ".*LeafSpec.*",
                    ".*have no `val_dataloader`.*"):
            warnings.filterwarnings("ignore", message=msg)
        trainer = L.Trainer(
            accelerator=config.accelerator, devices=config.devices, strategy=config.strategy,
            precision=precision, max_epochs=config.max_epochs, callbacks=callbacks,
            gradient_clip_val=config.grad_clip, gradient_clip_algorithm="norm",
            deterministic=(True if not gpu else "warn") if config.deterministic else False,
            logger=False, enable_progress_bar=show_bar, enable_model_summary=False,
            num_sanity_val_steps=0, default_root_dir=ckpt_dir, log_every_n_steps=1,
            **config.trainer_kwargs,
        )
        trainer.fit(module, train_loader, val_loader, ckpt_path=resume_path)

    best_path = ckpt_cb.best_model_path
    best_epoch, best_loss = None, None
    if ckpt_cb.best_model_score is not None:
        best_loss = float(ckpt_cb.best_model_score)
    if config.restore_best and best_path and Path(best_path).exists():
        state = torch.load(best_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        best_epoch = int(state.get("epoch", -1)) + 1
    if config.bn_recalibration:
        module.recalibrate_batchnorm()   # the final weights, also when there was no validation
    result = FitResult(
        history=history_cb.history, epochs_run=trainer.current_epoch, start_epoch=start_epoch,
        best_epoch=best_epoch, best_val_loss=best_loss,
        stopped_early=bool(early is not None and early.stopped_epoch > 0),
        checkpoint_dir=config.checkpoint_dir, precision=str(precision))
    if tmp is not None:
        tmp.cleanup()
    return result
