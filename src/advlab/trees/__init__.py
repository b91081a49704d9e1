"""Tree ensembles: the models security teams deploy (XGBoost, LightGBM, scikit-learn forests).

* :mod:`~advlab.trees.model`: :func:`train_trees` and :class:`TreeModel`, a gradient-free
  ``nn.Module`` whose forward is the library's own prediction (logits, on ``x.device``);
  black-box attacks (``hopskipjump``, ``square``, transfer, substitute) run on it through the
  :class:`~advlab.attacks.Oracle` unchanged.
* :mod:`~advlab.trees.ensemble` and :mod:`~advlab.trees.parse`: one representation of every
  library's trees, read by the attacks, the verifier and the model card.
* :mod:`~advlab.trees.io`: each library's safe format with advlab's sidecar; never a pickle.
* :mod:`~advlab.trees.milp`: the exact minimal evasion of Kantchelian et al. (ICML 2016).
* :mod:`~advlab.trees.greedy`: a fast coordinate-descent heuristic for large ensembles.
* :mod:`~advlab.trees.verify`: the robustness bound of Chen et al. (NeurIPS 2019).
* :mod:`~advlab.trees.defense`: adversarial training by data augmentation.
"""

from advlab.trees.ensemble import TreeEnsemble
from advlab.trees.model import TREE_KINDS, NoGradientError, TreeModel, train_trees

__all__ = ["TREE_KINDS", "NoGradientError", "TreeEnsemble", "TreeModel", "train_trees"]
