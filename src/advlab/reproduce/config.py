"""The settings every reproduction experiment gets (no torch here: listing stays instant)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Data sets that need files, and the option that gives their path.
PATH_OPTIONS = {"mnist": "--mnist", "nsl-kdd": "--nsl-kdd", "kddcup99": "--kddcup99",
                "tuandromd": "--tuandromd"}


@dataclass(frozen=True)
class Config:
    """What one experiment runs with.

    Attributes:
        quick: the smoke protocol (smaller data, fewer steps and seeds; each module says what).
        seeds: number of seeds (``seed, seed + 1, ...``) of stochastic experiments; ``None``:
            3, or 2 with ``quick``.
        seed: the first seed.
        dataset: a data set to run on instead of each experiment's default, where the
            experiment's protocol allows it (``None``: the default).
        paths: data set name -> file or folder, for the data sets that need files.
        device: where models and tensors live.
    """

    quick: bool = False
    seeds: int | None = None
    seed: int = 0
    dataset: str | None = None
    paths: Mapping[str, str] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.seeds is not None and self.seeds < 1:
            raise ValueError(f"reproduce: --seeds must be >= 1, got {self.seeds}")
        if self.seed < 0:
            raise ValueError(f"reproduce: --seed must be >= 0, got {self.seed}")
        for name in self.paths:
            if name not in PATH_OPTIONS:
                raise ValueError(f"reproduce: no data path option for {name!r}; known: "
                                 f"{', '.join(PATH_OPTIONS)}")

    @property
    def seed_list(self) -> list[int]:
        n = self.seeds if self.seeds is not None else (2 if self.quick else 3)
        return list(range(self.seed, self.seed + n))

    def path(self, dataset: str) -> Path | None:
        """The path given for ``dataset``, or ``None``."""
        p = self.paths.get(dataset)
        return Path(p) if p else None

    def resolve(self, datasets: tuple[str, ...]) -> tuple[str, str | None]:
        """``(dataset, missing)``: the data set an experiment allowing ``datasets`` runs on
        (``dataset`` when allowed, else the experiment's default), and the option it still
        needs (``None`` when its data is there)."""
        name = self.dataset if self.dataset in datasets else datasets[0]
        if name in PATH_OPTIONS and self.path(name) is None:
            return name, PATH_OPTIONS[name]
        return name, None
