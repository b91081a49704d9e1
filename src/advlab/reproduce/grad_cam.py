"""Grad-CAM maps are class-discriminative.

Paper: Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra, "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV 2017, §3–4: the map of a class highlights
the evidence for that class, not for the others (Fig. 1: "cat" vs "dog" maps of one image), and
removing the highlighted region lowers the class score. Here: ``explain.grad_cam`` of the
standard ``small_cnn`` (its last convolution) on 200 test images (100 in --quick): the Pearson
correlation between the map of the predicted class and that of the runner-up class, and the
drop of the predicted class's probability when the 20 % most highlighted pixels are zeroed,
against zeroing 20 % random pixels. Scaled down: digits instead of ImageNet.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from advlab.explain import grad_cam
from advlab.reproduce.common import IMAGES, dataset, image_protocol, standard_model, test_rows
from advlab.reproduce.config import Config
from advlab.reproduce.outcome import outcome, summarize

PAPER = "Selvaraju et al., ICCV 2017"
CLAIM = "class-discriminative localisation maps"
DATASETS = IMAGES


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def _drop(model: Any, x: torch.Tensor, order: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    k = int(0.2 * order.shape[1])
    mask = torch.ones_like(x.flatten(1)).scatter(1, order[:, :k], 0.0).view_as(x)
    with torch.no_grad():
        p = F.softmax(model(x), 1).gather(1, cls[:, None])[:, 0]
        q = F.softmax(model(x * mask), 1).gather(1, cls[:, None])[:, 0]
    return p - q


def run(config: Config) -> dict[str, Any]:
    ds = dataset(config, config.dataset)
    n = 100 if config.quick else 200
    x, _ = test_rows(ds, n, config.device)
    per_seed = []
    for s in config.seed_list:
        model = standard_model(config, config.dataset, s)
        with torch.no_grad():
            top2 = model(x).topk(2, dim=1).indices
        cam1, cam2 = grad_cam(model, x, top2[:, 0]), grad_cam(model, x, top2[:, 1])
        order = cam1.flatten(1).argsort(1, descending=True)
        rand = torch.rand(order.shape, generator=torch.Generator().manual_seed(s)).argsort(1)
        per_seed.append({"correlation": float(_corr(cam1, cam2).mean()),
                         "drop_cam": float(_drop(model, x, order, top2[:, 0]).mean()),
                         "drop_random": float(_drop(model, x, rand.to(x.device),
                                                    top2[:, 0]).mean())})
    m = summarize(per_seed)
    ok = m["correlation"]["mean"] < 0.5 and m["drop_cam"]["mean"] > m["drop_random"]["mean"]
    return outcome(
        figure=f"map correlation top-1 vs top-2 class {m['correlation']['mean']:.2f}; zeroing "
               f"the top 20 % pixels drops p(class) by {100 * m['drop_cam']['mean']:.1f} points "
               f"vs {100 * m['drop_random']['mean']:.1f} for random pixels",
        metrics=m, seeds=config.seed_list, headline="drop_cam", ok=ok, scaled=True,
        reason="maps differ between classes and point at the evidence" if ok else
        "maps are not class-discriminative here",
        dataset=config.dataset, protocol=image_protocol(config, config.dataset, n))
