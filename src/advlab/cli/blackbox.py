"""`advlab substitute` and `advlab transfer`: the black-box attacker's commands.

``substitute`` trains a substitute of a model folder from its labels only (Papernot et al. 2017,
:func:`advlab.attacks.substitute.train_substitute`), reports the queries and the agreement with
the target on the test split, saves the substitute as a model folder, and optionally measures
how well attacks crafted on it transfer. ``transfer`` builds a transferability matrix of model
folders (:func:`advlab.evaluation.transferability_matrix`): table, JSON and heat map.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from advlab.cli.common import (
    COUNT,
    RATE,
    UsageError,
    attack_from_flag,
    check_model_fits,
    device_of,
    load_model,
    log,
    model_and_data_options,
    number,
    number_list,
    recorded_dataset,
    run_options,
)


def register(sub: Any) -> None:
    p = sub.add_parser("substitute", help="train a substitute of a model from its labels only "
                       "(Papernot et al. 2017) and measure transfer attacks crafted on it")
    model_and_data_options(p, "the target: a folder from `advlab train`")
    p.add_argument("--architecture", choices=("small_cnn", "mlp"),
                   help="the substitute's architecture (default: the target's)")
    p.add_argument("--hidden", type=COUNT, nargs="+", help="hidden widths (mlp) or dense width")
    p.add_argument("--per-class", type=COUNT, default=10,
                   help="seed samples per class, drawn from the training split (default 10)")
    p.add_argument("--rounds", type=number(int, 0), default=6,
                   help="augmentation rounds (default 6)")
    p.add_argument("--lam", type=RATE, default=0.1, help="augmentation step lambda")
    p.add_argument("--tau", type=COUNT, default=3, help="period of lambda's sign flip")
    p.add_argument("--epochs", type=COUNT, default=10, help="substitute epochs per round")
    p.add_argument("--lr", type=RATE, default=1e-3)
    p.add_argument("--batch-size", type=COUNT, default=32)
    p.add_argument("--reservoir", type=COUNT, help="kappa: points augmented per round once "
                   "--reservoir-after rounds have run (reservoir sampling)")
    p.add_argument("--reservoir-after", type=number(int, 0), default=3)
    p.add_argument("--max-queries", type=COUNT, help="the oracle's query budget")
    p.add_argument("--attack", action="append", metavar="NAME[:KEY=VALUE,...]",
                   help="white-box attack to craft on the substitute and transfer (repeatable)")
    p.add_argument("--norm", default="linf", choices=("linf", "l2", "l1", "l0"))
    p.add_argument("--eps", type=number_list(float, 0, low_open=True),
                   help="comma-separated budgets for --attack, e.g. 0.1,0.2,0.3")
    run_options(p, out="output folder: substitute.json and the substitute's model folder")
    p.set_defaults(run=substitute)

    t = sub.add_parser("transfer", help="transferability matrix: attacks crafted on each "
                       "source model, scored on each target model")
    t.add_argument("--source", action="append", required=True, help="model folder (repeatable)")
    t.add_argument("--target", action="append", required=True, help="model folder (repeatable)")
    t.add_argument("--dataset", help="dataset name (default: the first source's)")
    t.add_argument("--data-path", help="folder (or file) holding the data set")
    t.add_argument("--attack", default="pgd", metavar="NAME[:KEY=VALUE,...]",
                   help="the white-box attack run on each source (default pgd)")
    t.add_argument("--norm", default="linf", choices=("linf", "l2", "l1", "l0"))
    t.add_argument("--eps", type=RATE, required=True, help="the attack budget")
    t.add_argument("--n", type=COUNT, default=500, help="test samples (default 500)")
    run_options(t, out="output folder: transfer.json, transfer.md and transfer.svg",
                quiet=False)
    t.add_argument("--report-dir", type=Path,
                   help="an `advlab evaluate` output folder: add the matrix to its summary.json "
                   "(key 'transfer') and re-render its report.html with the heat map")
    t.set_defaults(run=transfer)


def _load(folder: str, device: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    config = argparse.Namespace(model=folder, model_factory=None, device=device)
    return load_model(config)


def _attack_entry(text: str, norm: str) -> tuple[str, dict[str, Any]]:
    """``(name, knobs)`` of an attack flag ``NAME[:KEY=VALUE,...]``."""
    _, info = attack_from_flag(text, norm)
    return info["name"], {k: v for k, v in info.items() if k not in ("name", "norm")}


def substitute(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab.attacks.oracle import Oracle
    from advlab.attacks.substitute import seed_set, train_substitute
    from advlab.evaluation.transfer import transfer_rows
    from advlab.models import new_model, save, zoo_arguments

    if args.attack and not args.eps:
        raise UsageError("--attack needs --eps (comma-separated budgets)")
    eps_grid = args.eps or []
    attacks = [_attack_entry(a, args.norm) for a in args.attack or []]
    args.device = device_of(args.device)
    target, card, recorded = _load(args.model, args.device)
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    check_model_fits(target, args.model, recorded, dataset, args.device)
    architecture = args.architecture or card.get("architecture") or "mlp"
    if architecture not in ("small_cnn", "mlp"):
        architecture = "mlp"
    arguments = zoo_arguments(dataset, architecture,
                              None if args.hidden is None else tuple(args.hidden))
    torch.manual_seed(args.seed)  # the CLI alone seeds globally; every part also takes a seed
    model = new_model(architecture, arguments, seed=args.seed, device=args.device)
    gen = torch.Generator().manual_seed(args.seed)
    idx = seed_set(dataset.y_train, args.per_class, generator=gen)
    x_test, y_test = dataset.x_test.to(args.device), dataset.y_test.to(args.device)
    with torch.no_grad():
        target_labels = target(x_test).argmax(1)  # the evaluator's view, never queried
    oracle = Oracle(target, output="labels", max_queries=args.max_queries)
    log(f"training a {architecture} substitute from {len(idx)} seed samples over "
        f"{args.rounds} rounds")
    result = train_substitute(
        oracle, dataset.x_train[idx].to(args.device), model, rounds=args.rounds, lam=args.lam,
        tau=args.tau, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        reservoir=args.reservoir, reservoir_after=args.reservoir_after, domain=dataset.domain,
        holdout=(x_test, target_labels), seed=args.seed, progress=not args.quiet)
    log(f"{result.queries} queries; agreement with the target on {len(y_test)} test samples: "
        f"{result.agreement:.1%}")
    rows = transfer_rows(result.model, target, x_test, y_test, dataset.domain, args.norm,
                         attacks, eps_grid, seed=args.seed)
    for r in rows:
        log(f"{r['attack']} {args.norm} eps {r['eps']:g}: transfer success "
            f"{r['transfer_success']:.1%} (white-box on the substitute "
            f"{r['substitute_success']:.1%})")
    settings = {k: getattr(args, k) for k in ("model", "per_class", "rounds", "lam", "tau",
                                              "epochs", "lr", "batch_size", "reservoir",
                                              "reservoir_after", "max_queries", "seed")}
    out = {"settings": {**settings, "architecture": architecture, "dataset": dataset.name},
           "substitute": result.record(), "transfer": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    save(result.model.cpu(), args.out / "model", architecture=architecture, arguments=arguments,
         dataset=recorded or {"name": dataset.name}, class_names=list(dataset.class_names),
         metrics={"agreement": result.agreement}, seed=args.seed,
         training={"method": "substitute (Papernot et al. 2017)", "queries": result.queries,
                   **settings})
    (args.out / "substitute.json").write_text(json.dumps(out, indent=2) + "\n")
    log(f"wrote {args.out / 'substitute.json'} and the substitute to {args.out / 'model'}")
    return {"command": "substitute", "out": str(args.out), "queries": result.queries,
            "agreement": round(float(result.agreement or 0.0), 6),
            "transfer": {f"{r['attack']}@{r['eps']:g}": round(r["transfer_success"], 6)
                         for r in rows}, "seed": args.seed}


def transfer(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from advlab import ThreatModel
    from advlab.evaluation.transfer import transferability_matrix
    from advlab.report.plots import transfer_figure

    name, params = _attack_entry(args.attack, args.norm)
    if args.report_dir is not None and not (args.report_dir / "summary.json").is_file():
        raise UsageError(f"--report-dir {args.report_dir}: no summary.json (an `advlab "
                         "evaluate` output folder is expected)")
    args.device = device_of(args.device)
    loaded, records = {}, {}
    for folder in dict.fromkeys([*args.source, *args.target]):
        loaded[folder], _, records[folder] = _load(folder, args.device)
    recorded = next((r for r in records.values() if r), {})
    dataset, _, _ = recorded_dataset(args.dataset, args.data_path, {}, recorded)
    for folder, model in loaded.items():
        check_model_fits(model, folder, records[folder], dataset, args.device)
    n = min(args.n, len(dataset.y_test))
    order = torch.randperm(len(dataset.y_test), generator=torch.Generator().manual_seed(
        args.seed))[:n].sort().values
    x, y = dataset.x_test[order].to(args.device), dataset.y_test[order].to(args.device)
    threat = ThreatModel(args.norm, args.eps, dataset.domain)
    names = {folder: Path(folder).name or folder for folder in loaded}
    if len(set(names.values())) < len(names):
        names = {folder: folder for folder in loaded}
    log(f"crafting {name} ({args.norm}, eps {args.eps:g}) on {len(args.source)} source(s), "
        f"scoring on {len(args.target)} target(s), {n} samples")
    matrix = transferability_matrix({names[f]: loaded[f] for f in args.source},
                                    {names[f]: loaded[f] for f in args.target}, x, y, threat,
                                    attack=name, params=params, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(json.dumps(matrix.as_dict(), indent=2) + "\n")
    (args.out / "transfer.md").write_text(matrix.to_markdown() + "\n")
    (args.out / "transfer.svg").write_text(transfer_figure(matrix.as_dict()) or "")
    log(matrix.to_markdown())
    log(f"wrote {args.out / 'transfer.json'}, transfer.md and transfer.svg")
    if args.report_dir is not None:
        from advlab.report import write_report

        source = args.report_dir / "summary.json"
        summary = json.loads(source.read_text())
        summary["transfer"] = matrix.as_dict()
        source.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        log(f"added the matrix to {source}; report: {write_report(args.report_dir)}")
    return {"command": "transfer", "out": str(args.out), "attack": name, "eps": args.eps,
            "n": n, "success": matrix.success, "sources": matrix.sources,
            "targets": matrix.targets}
