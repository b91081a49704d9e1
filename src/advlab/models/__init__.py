"""Models: a small zoo, standard training, safe save/load and composable wrappers."""

from advlab.models.io import ModelFileError, load, read_sidecar, save
from advlab.models.training import (
    History,
    TrainedModel,
    accuracy,
    fit,
    new_model,
    split_validation,
    train_classifier,
    zoo_arguments,
)
from advlab.models.wrappers import (
    Normalize,
    QueryCounter,
    check_logits,
    eval_mode,
    looks_like_probabilities,
)
from advlab.models.zoo import ARCHITECTURES, build, mlp, small_cnn

__all__ = [
    "ARCHITECTURES", "History", "ModelFileError", "Normalize", "QueryCounter", "accuracy", "build",
    "check_logits", "eval_mode", "fit", "load", "looks_like_probabilities", "mlp", "read_sidecar",
    "save", "small_cnn", "split_validation", "TrainedModel", "train_classifier", "new_model",
    "zoo_arguments",
]
