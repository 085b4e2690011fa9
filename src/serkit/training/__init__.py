"""Torch training: the Lightning engine and training-time augmentation."""
from serkit.training.augmentation import (SPEC_AUGMENTATIONS, WAVEFORM_AUGMENTATIONS, build_spec_augment,
                                          waveform_augmenter)
from serkit.training.engine import (ArrayDataset, FitResult, HistoryCallback, SERLightningModule,
                                    TrainConfig, fit_network)

__all__ = ["SPEC_AUGMENTATIONS", "WAVEFORM_AUGMENTATIONS", "ArrayDataset", "FitResult", "HistoryCallback",
           "SERLightningModule", "TrainConfig", "build_spec_augment", "fit_network",
           "waveform_augmenter"]
