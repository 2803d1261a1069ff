"""How much do InfLoRA's later branches disturb an earlier task? A diagnostic, not a timing benchmark.

Trains InfLoRA over a scenario as a run does, then passes experience 0's *eval* inputs through the
merged model (every branch on, as InfLoRA is tested) and reports, per LoRA layer of the encoder:

- ``outside_memory``: the share of those inputs' energy outside the layer's memory of earlier
  tasks' input subspaces (the memory keeps ``subspace_threshold`` of each task's *training* input
  energy, measured when the task's branch was designed);
- per later branch ``t``: ``in_span`` = the share of the inputs' energy inside ``span(A_t)`` (the
  leak that the design keeps small), and ``out_over_base`` = ``||B_t A_t x|| / ||W x||`` over those
  inputs (how large the branch's output is beside the frozen layer's);
- ``features_shift``: ``||f_merged - f_base|| / ||f_base||`` of each encoder level's features of
  those inputs, with every branch on against none (the foundation that experience 0 was trained on).

A leak of about 1 % of the energy (10 % of the norm) that comes out as 20-50 % of the layer's output
means the branches' gain on their subspace is several times the frozen weights'. On ct_tasks and on
the unicon scenario the merged branches move experience 0's features by 69-85 %, while the AUC drops
on ct_tasks and holds on unicon: the size of the shift alone does not predict the loss (README,
"Measured here").

    OMP_NUM_THREADS=1 python -m benchmarks.inflora_interference --seed 2     # ct_tasks at full size
    OMP_NUM_THREADS=1 python -m benchmarks.inflora_interference --scenario unicon --seed 0
    OMP_NUM_THREADS=1 python -m benchmarks.inflora_interference --quick      # seconds: a smoke test

Writes ``benchmarks/results/inflora_interference-<scenario>-s<seed>[_quick].json``.
"""

from __future__ import annotations

import argparse


def probe(scenario: str, seed: int, quick: bool, overrides: dict) -> dict:
    import torch

    from benchmarks.common import new_strategy
    from unicon_bench.models import lora as L
    from unicon_bench.models.subspace import input_rows

    stream, strategy = new_strategy("inflora", scenario, seed, quick, overrides)
    spec = strategy.spec
    for experience in stream.train_stream:
        strategy.train(experience)

    model = strategy.model.eval()
    layers = strategy._layers()
    branches = [model.routes[i].peft for i in sorted(model.routes)][1:]  # experience 0 has none
    sums = {name: {"x": 0.0, "base": 0.0, "outside": 0.0, **{f"in {b}": 0.0 for b in branches},
                   **{f"out {b}": 0.0 for b in branches}} for name in layers}
    spans = {name: {b: torch.linalg.qr(layer.updates[b].down.weight.detach().double().flatten(1).T).Q
                    for b in branches} for name, layer in layers.items()}

    def hook(name, layer):
        def grab(_module, args):
            x = args[0]
            rows, acc, memory = input_rows(layer.base, x).double(), sums[name], strategy.memory[name]
            acc["x"] += float((rows**2).sum())
            acc["base"] += float((layer.base(x).double() ** 2).sum())
            acc["outside"] += float(((rows - (rows @ memory) @ memory.T) ** 2).sum())
            for b in branches:
                acc[f"in {b}"] += float(((rows @ spans[name][b]) ** 2).sum())
                acc[f"out {b}"] += float((layer.updates[b](x).double() ** 2).sum())

        return grab

    loader = torch.utils.data.DataLoader(stream.eval_stream[0].dataset, batch_size=spec.train.eval_batch_size)
    handles = [layer.register_forward_pre_hook(hook(name, layer)) for name, layer in layers.items()]
    try:
        with torch.no_grad():
            for batch in loader:
                model.features(batch[0], 0)  # every branch on, as InfLoRA is evaluated
    finally:
        for h in handles:
            h.remove()
    shifts: list[list[float]] = []  # per level: [sum |merged - base|^2, sum |base|^2]
    with torch.no_grad():
        for batch in loader:
            merged = model.features(batch[0], 0)
            L.set_active(model, None)  # no branch: the foundation experience 0 was trained on
            base = model.encoder(model.stem_features(batch[0], model.routes[0]))
            for i, (m, b) in enumerate(zip(merged, base)):
                shifts.extend([0.0, 0.0] for _ in range(i + 1 - len(shifts)))
                shifts[i][0] += float(((m - b).double() ** 2).sum())
                shifts[i][1] += float((b.double() ** 2).sum())

    per_layer = []
    for name, acc in sums.items():
        per_layer.append({
            "layer": name, "fan_in": int(strategy.memory[name].shape[0]),
            "memory_dims": int(strategy.memory[name].shape[1]), "outside_memory": acc["outside"] / acc["x"],
            "branches": {b: {"in_span": acc[f"in {b}"] / acc["x"],
                             "out_over_base": (acc[f"out {b}"] / acc["base"]) ** 0.5} for b in branches},
        })
    return {
        "scenario": scenario, "quick": quick, "seed": seed, "params": overrides,
        "experience_0": spec.experiences[0].name, "branches": branches, "layers": per_layer,
        "features_shift": [(n / d) ** 0.5 for n, d in shifts],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="ct_tasks")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="an InfLoRA parameter, e.g. subspace_threshold=0.99 (repeatable)")
    args = parser.parse_args()
    from benchmarks.common import write
    from unicon_bench.harness.request import parse_overrides

    overrides = parse_overrides(args.sets)
    record = probe(args.scenario, args.seed, args.quick, overrides)
    tag = "".join(f"-{k}{v}" for k, v in sorted(overrides.items()))
    path = write(f"inflora_interference-{args.scenario}-s{args.seed}{tag}" + ("_quick" if args.quick else ""), record)
    print(f"{'layer':28s} {'fan_in':>6s} {'memory':>6s} {'outside':>7s}  "
          + "  ".join(f"{b + ' in':>9s} {b + ' out':>9s}" for b in record["branches"]))
    for row in record["layers"]:
        cells = "  ".join(f"{v['in_span']:9.4f} {v['out_over_base']:9.3f}" for v in row["branches"].values())
        print(f"{row['layer']:28s} {row['fan_in']:6d} {row['memory_dims']:6d} {row['outside_memory']:7.4f}  {cells}")
    print("features shift per level (merged vs base): " + ", ".join(f"{s:.3f}" for s in record["features_shift"]))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
