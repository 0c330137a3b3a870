"""Training's domain, free of I/O: the model aggregate (:mod:`.model`) and the checks on an
uploaded photo (:mod:`.photo`, imported where it is used: OpenCV loads with it)."""

from visiona.training.domain.model import (
    MAX_PHOTOS,
    MIN_PHOTOS,
    NOT_KEPT,
    PROVIDER_STATUS,
    TERMINAL,
    Model,
    ModelStatus,
    Preset,
    ProviderTraining,
)

__all__ = [
    "MAX_PHOTOS",
    "MIN_PHOTOS",
    "NOT_KEPT",
    "PROVIDER_STATUS",
    "TERMINAL",
    "Model",
    "ModelStatus",
    "Preset",
    "ProviderTraining",
]
