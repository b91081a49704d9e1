"""Defenses: train-time (adversarial training), run-time (detectors), retraining loops, and
training-set filters against poisoning (activation clustering, spectral signatures)."""

from advlab.defenses.activation_clustering import activation_clustering
from advlab.defenses.adversarial_training import (
    METHODS,
    adversarial_step,
    adversarial_train,
)
from advlab.defenses.detection import ActivationDetector, Detector, detection_metrics
from advlab.defenses.detection_study import DetectionStudy, detection_study
from advlab.defenses.distillation import Distilled, distill
from advlab.defenses.poison_filter import PoisonFilter
from advlab.defenses.retraining import RetrainReport, attack_traffic, detect_and_retrain
from advlab.defenses.robust_classifier import defense_record, train_robust_classifier
from advlab.defenses.spectral import spectral_signatures

__all__ = ["METHODS", "ActivationDetector", "DetectionStudy", "Detector", "Distilled",
           "PoisonFilter", "RetrainReport", "activation_clustering", "adversarial_step",
           "adversarial_train", "attack_traffic", "defense_record", "detect_and_retrain",
           "detection_metrics", "detection_study", "distill", "spectral_signatures",
           "train_robust_classifier"]
