"""--device everywhere: one rule (resolve_device), on every command, and the CUDA paths (their
tests skip with the reason when there is no GPU, as on this machine)."""

from __future__ import annotations

import pytest
import torch

from advlab.cli import main
from advlab.models.device import resolve_device

gpu = pytest.mark.skipif(not torch.cuda.is_available(),
                         reason="CUDA is not available (torch.cuda.is_available() is False)")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")


def test_resolve_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    for bad in ("tpu", "cuda:x", "gpu", ""):
        with pytest.raises(ValueError, match="expected one of auto, cpu, cuda, cuda:N"):
            resolve_device(bad)


@no_gpu
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_gpu_says_so(name) -> None:
    with pytest.raises(ValueError, match="CUDA is not available here.*use --device cpu or auto"):
        resolve_device(name)


COMMANDS = {
    "train": ["train", "--dataset", "digits", "--out", "{tmp}/m"],
    "evaluate": ["evaluate", "--model", "{tmp}/m", "--attack", "fgsm", "--eps", "linf=0.1",
                 "--out", "{tmp}/e"],
    "demo": ["demo", "--out", "{tmp}/demo"],
    "detect": ["detect", "--model", "{tmp}/m", "--eps", "0.1", "--out", "{tmp}/d"],
    "explain": ["explain", "--model", "{tmp}/m", "--method", "saliency", "--out", "{tmp}/x"],
    "robust-features": ["robust-features", "--dataset", "nsl-kdd", "--out", "{tmp}/r"],
    "poison": ["poison", "--attack", "backdoor", "--dataset", "digits", "--out", "{tmp}/p"],
    "substitute": ["substitute", "--model", "{tmp}/m", "--out", "{tmp}/s"],
    "transfer": ["transfer", "--source", "{tmp}/m", "--target", "{tmp}/m", "--eps", "0.1",
                 "--out", "{tmp}/t"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("device", ["tpu", pytest.param("cuda", marks=no_gpu)])
def test_every_command_takes_device_and_refuses_a_missing_one(command, device, tmp_path,
                                                              capsys) -> None:
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[command]] + ["--device", device]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = "expected one of" if device == "tpu" else "CUDA is not available"
    assert err[-1].startswith("advlab: error: --device: ") and expected in err[-1], err
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("command", ["poison", "robust-features"])
def test_cpu_only_commands_say_so(command, tmp_path, capsys, monkeypatch) -> None:
    """Their library functions take no device yet: a GPU is refused, not silently ignored."""
    import advlab.models.device as device_module

    monkeypatch.setattr(device_module, "resolve_device", lambda text: torch.device("cuda", 0))
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[command]] + ["--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"advlab: error: --device cuda: `advlab {command}` runs on the CPU only "
                       "(its library functions take no device yet); use --device cpu")
    assert not any(tmp_path.iterdir())


@gpu
@pytest.mark.gpu
def test_evaluate_runs_on_cuda(tmp_path) -> None:
    from advlab.data import load
    from advlab.evaluation import evaluate
    from advlab.models import train_classifier

    data = load("digits")
    model = train_classifier(data, "mlp", epochs=1, val_fraction=0, device="cuda",
                             progress=False).model
    assert next(model.parameters()).device.type == "cuda"
    ev = evaluate(model, data, ["fgsm", {"name": "pgd", "steps": 3}, "deepfool"],
                  {"linf": [0.1], "l2": [1.0]}, n=40, batch_size=20, device="cuda",
                  out_dir=tmp_path, progress=False)
    assert ev.summary["config"]["device"] == "cuda" and 0 <= ev.clean_accuracy <= 1
    assert ev.worst_case("linf", 0.1) <= ev.robust_accuracy("fgsm", 0.1)


@gpu
@pytest.mark.gpu
def test_adversarial_training_runs_on_cuda(tmp_path) -> None:
    from advlab.data import load
    from advlab.defenses import train_robust_classifier
    from advlab.threat import ThreatModel

    data = load("digits")
    trained = train_robust_classifier(data, "mlp", ThreatModel("linf", 0.1, data.domain),
                                      device="cuda", epochs=1, progress=False,
                                      checkpoint=tmp_path / "ckpt")
    assert next(trained.model.parameters()).device.type == "cuda"
    assert 0 <= trained.metrics["test_accuracy"] <= 1


@gpu
@pytest.mark.gpu
def test_resolve_cuda_index() -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
