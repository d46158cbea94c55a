#!/usr/bin/env python3
"""Markdown tables of docs/experiments.md from the demo runs under RUNS (summary.json of each)."""
import json
import math
import os
import sys

runs = sys.argv[1]


def load(name):
    p = os.path.join(runs, name, "summary.json")
    return json.load(open(p)) if os.path.exists(p) else None


def p1(r):
    return f"{r['pass_at_k']['1']:.3f} ± {r.get('pass_at_1_stderr', 0):.3f}"


def gain(r):
    g = r.get("gain_over_sft")
    return f"{100 * g['pass_at_1']:+.1f} ± {100 * g['stderr']:.1f}" if g else ""


def topk(r, s):
    k = str(s.get("eval_n", 8))
    return f"{r['pass_at_k'].get(k, float('nan')):.3f}"


def arm_rows(arm, rounds, s):
    for r in rounds:
        yield (f"| {arm} | {r['name']} | {p1(r)} | {gain(r)} | {topk(r, s)} | {r.get('greedy_accuracy', 0):.3f} | "
               f"{r.get('pairs', '')} | {r.get('train_steps', '')} | {r.get('train_tokens', '')} | "
               f"{r.get('seconds', 0):.0f} |")


print("### The main run and its controls (seeds 0 and 1)\n")
for name in ("main-s0", "main-s1"):
    s = load(name)
    if not s:
        continue
    print(f"**{name}** (seed {s['seed']}, {s['setup']['held_out']} held-out problems, n = {s.get('eval_n', 8)} "
          f"samples at T = 1; pass@1 ± standard error over problems; gain over SFT paired, in points; "
          f"whole run {s['seconds']:.0f} s)\n")
    print(f"| arm | round | pass@1 | gain over SFT | pass@{s.get('eval_n', 8)} | greedy | rows | steps | "
          "train tokens | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in arm_rows(s["method"] + "+nll" if s["method"] == "dpo" else s["method"], s["rounds"], s):
        print(line)
    for c in s.get("controls", []):
        for line in arm_rows(c["name"], c["rounds"], s):
            print(line)
    print()

print("### Sweeps on the training split (seed 0, 2 rounds from the same SFT model)\n")
print("Chosen by the accuracy of round 2's samples on fresh training-pool prompts (the model after round 1); "
      "held-out pass@1 after round 2 is shown beside it, not used for the choice.\n")
print("| run | learning rate | rpo_alpha | truncate rejected | pairs per prompt | train-split accuracy (round 2) | "
      "held-out pass@1 (round 2) | gain over SFT |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
for name in ("lr1e-4", "lr3e-4", "lr1e-3", "no-truncation", "alpha1"):
    s = load(name)
    if not s or len(s["rounds"]) < 3:
        continue
    st, last = s["setup"], s["rounds"][-1]
    print(f"| {name} | {st['learning_rate']:g} | {s.get('rpo_alpha', 0):g} | {st.get('truncate_rejected')} | "
          f"{st['max_pairs']} | {last.get('train_sample_accuracy', 0):.3f} | {p1(last)} | {gain(last)} |")
print()

print("### Objectives (seed 0, the same SFT model, 2 rounds each)\n")
print("KTO and BCO train on every sample as a row, so they draw n = 4 samples per prompt and train 1 epoch "
      "(n = 16 and 2 epochs would be 16x DPO's steps).\n")
print("| objective | learning rate | samples per prompt | pass@1 after SFT | pass@1 after round 2 | gain over SFT | "
      "pass@8 SFT → round 2 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, label in (("lr3e-4", "dpo+nll (RPO)"), ("dpo-plain", "dpo"), ("kto", "kto"), ("kto-lr3e-5", "kto"),
                    ("bco", "bco"), ("bco-lr1e-4", "bco"), ("bco-lr1e-5", "bco"), ("orpo", "orpo"), ("simpo", "simpo")):
    s = load(name)
    if not s:
        continue
    a, b = s["rounds"][0], s["rounds"][-1]
    print(f"| {label} | {s['setup']['learning_rate']:g} | {s.get('n_samples', '')} | {p1(a)} | {p1(b)} | {gain(b)} | "
          f"{topk(a, s)} → {topk(b, s)} |")
s = load("main-s0")
if s:
    for c in s.get("controls", []):
        if c["name"] == "rft" and len(c["rounds"]) >= 2:
            r = c["rounds"][1]
            print(f"| rft (control, main run) | {s['setup']['learning_rate']:g} | {s.get('n_samples', '')} | "
                  f"{p1(s['rounds'][0])} | {p1(r)} | {gain(r)} | {topk(s['rounds'][0], s)} → {topk(r, s)} |")
print("\nTriple-PO is not in this table: its third response is a gold worked solution, which the answer-only "
      "pool does not have (it runs on prompts with worked solutions: `prefopt train --method tpo`).\n")

s = load("passk64")
if s:
    a, b = s["rounds"][0], s["rounds"][-1]
    ks = sorted(a["pass_at_k"], key=int)
    print("### pass@k up to k = 64 (seed 0): SFT vs the last round\n")
    print("| model | " + " | ".join(f"k={k}" for k in ks) + " |")
    print("|---|" + "---:|" * len(ks))
    for r in (a, b):
        print(f"| {r['name']} | " + " | ".join(f"{r['pass_at_k'][k]:.3f}" for k in ks) + " |")
    cross = [k for k in ks if a["pass_at_k"][k] > b["pass_at_k"][k]]
    print("\nThe SFT model is ahead at k = " + (", ".join(cross) if cross else "no k") + ".\n")

print("### Multi-turn (--tools python): M-DPO with tool observations masked vs not (3 seeds)\n")
print("| seed | masked: SFT → last | gain | unmasked: SFT → last | gain |")
print("|---|---:|---:|---:|---:|")
gm, gu = [], []
for seed in (0, 1, 2):
    m, u = load(f"tools-masked-s{seed}"), load(f"tools-unmasked-s{seed}")
    if not m or not u:
        continue
    row = f"| {seed} |"
    for s, acc in ((m, gm), (u, gu)):
        a, b = s["rounds"][0], s["rounds"][-1]
        acc.append(b.get("gain_over_sft", {}).get("pass_at_1", 0))
        row += f" {a['pass_at_k']['1']:.3f} → {b['pass_at_k']['1']:.3f} | {gain(b)} |"
    print(row)
if gm:
    def mean_se(v):
        m = sum(v) / len(v)
        se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else 0
        return f"{100 * m:+.1f} ± {100 * se:.1f}"
    print(f"| mean over seeds | | {mean_se(gm)} | | {mean_se(gu)} |")
print()
