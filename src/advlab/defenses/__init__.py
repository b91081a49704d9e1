"""Defenses: train-time (adversarial training), run-time (detectors) and retraining loops."""

from advlab.defenses.adversarial_training import (
    METHODS,
    adversarial_step,
    adversarial_train,
    defense_record,
)
from advlab.defenses.detection import ActivationDetector, Detector, detection_metrics
from advlab.defenses.distillation import Distilled, distill
from advlab.defenses.retraining import RetrainReport, attack_traffic, detect_and_retrain

__all__ = ["METHODS", "ActivationDetector", "Detector", "Distilled", "RetrainReport",
           "adversarial_step", "adversarial_train", "attack_traffic", "defense_record",
           "detect_and_retrain", "detection_metrics", "distill"]
