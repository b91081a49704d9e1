"""Training checkpoints: an interrupted training resumed from its checkpoint ends exactly where
the uninterrupted one does; a checkpoint of another configuration is refused; no pickle."""

from __future__ import annotations

import pytest
import torch

from advlab.attacks import pgd
from advlab.data import load
from advlab.defenses import adversarial_train
from advlab.models import new_model, zoo_arguments
from advlab.models.checkpoint import CheckpointError, has_checkpoint
from advlab.threat import ThreatModel


class Interrupted(Exception):
    pass


def test_resumed_adversarial_training_equals_the_uninterrupted_one(tmp_path) -> None:
    data = load("digits")
    threat = ThreatModel("linf", 0.1, data.domain)
    val = (data.x_test[:80], data.y_test[:80])
    calls, limit = [0], [None]

    def attack(model, x, y, threat, *, generator=None):  # PGD-5 that can be interrupted
        calls[0] += 1
        if limit[0] is not None and calls[0] > limit[0]:
            raise Interrupted
        return pgd(model, x, y, threat, steps=5, early_stop=False, generator=generator)

    def train(folder, *, resume=False):
        model = new_model("mlp", zoo_arguments(data, "mlp"), seed=0)
        history = adversarial_train(model, data.train, threat, attack=attack, epochs=3,
                                    batch_size=256, val=val, seed=1, progress=False,
                                    checkpoint=folder, resume=resume)
        return model, history

    reference, ref_history = train(tmp_path / "a")
    per_epoch = calls[0] // 3
    calls[0], limit[0] = 0, per_epoch + 2  # in the second epoch
    with pytest.raises(Interrupted):
        train(tmp_path / "b")
    assert has_checkpoint(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["epoch-0000"]
    limit[0] = None
    resumed, history = train(tmp_path / "b", resume=True)
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert history.train_loss == ref_history.train_loss
    assert history.val_robust_accuracy == ref_history.val_robust_accuracy
    assert history.best_epoch == ref_history.best_epoch

    with pytest.raises(CheckpointError, match="another training configuration"):
        model = new_model("mlp", zoo_arguments(data, "mlp"), seed=0)
        adversarial_train(model, data.train, threat, attack=attack, epochs=3, batch_size=128,
                          val=val, seed=1, progress=False, checkpoint=tmp_path / "b",
                          resume=True)
    optimizer_file = next((tmp_path / "b").glob("epoch-*/optimizer.pt"))
    torch.load(optimizer_file, weights_only=True)  # readable without unpickling code
