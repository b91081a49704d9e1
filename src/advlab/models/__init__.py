"""Models: a small zoo, standard training, safe save/load and composable wrappers."""

from advlab import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "io": ["ModelFileError", "load", "read_sidecar", "save"],
    "training": ["History", "TrainedModel", "accuracy", "fit", "fit_loop", "lr_schedule",
        "make_optimizer", "new_model", "split_validation", "train_classifier", "zoo_arguments"],
    "wrappers": ["Normalize", "QueryCounter", "check_logits", "eval_mode",
        "looks_like_probabilities"],
    "zoo": ["ARCHITECTURES", "build", "mlp", "small_cnn"],
})
