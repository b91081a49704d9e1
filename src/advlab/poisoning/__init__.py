"""Poisoning attacks: the attacker edits the training set instead of the test input.

Each attack is a pure function of the training data that returns
:class:`~advlab.poisoning.base.Poisoned` ``(x, y, indices)``; conventions are in
:mod:`advlab.poisoning.base`.

* Data modification: :func:`random_label_flip`, :func:`adversarial_label_flip`.
* Data injection: :func:`svm_injection` (Biggio, Nelson, Laskov 2012).
* Backdoors: :func:`backdoor` with a :class:`PatchTrigger` or :class:`FeatureTrigger`.

The poisoning defense (spectral signatures) is in :mod:`advlab.defenses.spectral`; the metrics
and the poisoning curve are in :mod:`advlab.evaluation.poisoning`.
"""

from advlab import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(__name__, {
    "backdoor": ["backdoor"],
    "base": ["Poisoned"],
    "label_flip": ["adversarial_label_flip", "random_label_flip"],
    "svm_poisoning": ["svm_injection"],
    "triggers": ["FeatureTrigger", "PatchTrigger"],
})
