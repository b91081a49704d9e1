"""Defenses: train-time (adversarial training), run-time (detectors), retraining loops, and
training-set filters against poisoning (activation clustering, spectral signatures)."""

from advlab import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "activation_clustering": ["activation_clustering"],
    "adversarial_training": ["METHODS", "adversarial_step", "adversarial_train"],
    "detection": ["ActivationDetector", "Detector", "detection_metrics"],
    "detection_study": ["DetectionStudy", "detection_study"],
    "distillation": ["Distilled", "distill"],
    "poison_filter": ["PoisonFilter"],
    "retraining": ["RetrainReport", "attack_traffic", "detect_and_retrain"],
    "robust_classifier": ["defense_record", "train_robust_classifier"],
    "spectral": ["spectral_signatures"],
})
