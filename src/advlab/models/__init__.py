"""Models: a small zoo, standard training, safe save/load and composable wrappers."""

from advlab.models.io import ModelFileError, load, read_sidecar, save
from advlab.models.training import (
    History,
    TrainedModel,
    accuracy,
    fit,
    fit_loop,
    lr_schedule,
    make_optimizer,
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
    "accuracy", "ARCHITECTURES", "build", "check_logits", "eval_mode", "fit", "fit_loop",
    "History", "load", "looks_like_probabilities", "lr_schedule", "make_optimizer", "mlp",
    "ModelFileError", "new_model", "Normalize", "QueryCounter", "read_sidecar", "save",
    "small_cnn", "split_validation", "train_classifier", "TrainedModel", "zoo_arguments",
]
