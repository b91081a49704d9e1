"""Explanations, and explanations put to work for security.

* :mod:`.attributions`: local attributions backed by captum (saliency, integrated gradients,
  Grad-CAM, SHAP values by permutation sampling, GradientSHAP and DeepLIFT-SHAP).
* :mod:`.permutation`: DALEX-style permutation importance (``model_parts``).
* :mod:`.explanation`: one method on a data set's samples (``explain_samples``).
* :mod:`.robust_features`: XAI-based robust feature selection (Al-Essa et al., ISMIS 2022).
* :mod:`.finetune`: XAI-driven fine-tuning on SHAP features (Al-Essa et al., 2022).
* :mod:`.signatures`: SHAP-signature detection of adversarial inputs (Fidel et al., 2019).
* :mod:`.guided`: XAI-guided evasion restricted to the top-k features (after Kuppa and Le-Khac,
  2021).

The user guide and a worked NSL-KDD case study are in docs/xai-security.md.
"""

from advlab import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "attributions": ["deeplift_shap", "feature_mask", "grad_cam", "gradient_shap",
        "integrated_gradients", "saliency", "shapley_sampling"],
    "explanation": ["attribution_ranking", "explain_samples"],
    "finetune": ["ShapPipeline", "xai_fine_tune", "xenia_refine"],
    "guided": ["guided_attack", "restrict_threat", "success_vs_k"],
    "permutation": ["Importance", "feature_groups", "model_parts"],
    "robust_features": ["FeatureSubset", "RobustFeatures", "TrainSettings",
        "robust_feature_selection", "select_robust"],
    "signatures": ["ShapSignatureDetector", "calibration_shift", "split_rows"],
})
