"""Explanations, and explanations put to work for security.

* :mod:`.attributions`: local attributions backed by captum (saliency, integrated gradients,
  Grad-CAM, SHAP values by permutation sampling, GradientSHAP and DeepLIFT-SHAP).
* :mod:`.permutation`: DALEX-style permutation importance (``model_parts``).
* :mod:`.robust_features`: XAI-based robust feature selection (Al-Essa et al., ISMIS 2022).
* :mod:`.finetune`: XAI-driven fine-tuning on SHAP features (Al-Essa et al., 2022).
* :mod:`.signatures`: SHAP-signature detection of adversarial inputs (Fidel et al., 2019).
* :mod:`.guided`: XAI-guided evasion restricted to the top-k features (after Kuppa and Le-Khac,
  2021).

The user guide and a worked NSL-KDD case study are in docs/xai-security.md.
"""

from advlab.explain.attributions import (
    deeplift_shap,
    feature_mask,
    grad_cam,
    gradient_shap,
    integrated_gradients,
    saliency,
    shapley_sampling,
)
from advlab.explain.finetune import ShapPipeline, xai_fine_tune, xenia_refine
from advlab.explain.guided import guided_attack, restrict_threat, success_vs_k
from advlab.explain.permutation import Importance, feature_groups, model_parts
from advlab.explain.robust_features import (
    FeatureSubset,
    RobustFeatures,
    TrainSettings,
    robust_feature_selection,
    select_robust,
)
from advlab.explain.signatures import ShapSignatureDetector, calibration_shift, split_rows

__all__ = [
    "FeatureSubset", "Importance", "RobustFeatures", "ShapPipeline", "ShapSignatureDetector",
    "TrainSettings", "calibration_shift", "deeplift_shap", "feature_groups", "feature_mask",
    "grad_cam", "gradient_shap", "guided_attack", "integrated_gradients", "model_parts",
    "restrict_threat", "robust_feature_selection", "saliency", "select_robust",
    "shapley_sampling", "split_rows", "success_vs_k", "xai_fine_tune", "xenia_refine",
]
