#!/usr/bin/python3
"""The PyTorch peer of `prefopt bench dpo-step`: a TRL-style eager DPO step.

What TRL's DPOTrainer does per step, written out in plain PyTorch (Debian's
python3-torch, the same ATen/BLAS as prefopt's libtorch): chosen and rejected
concatenated into one padded batch of 2 x pairs rows (prompt + completion,
right padding), an HF-eager Llama forward (RMSNorm, RoPE, K/V repeated for
GQA, [B, H, T, T] scores with an additive causal + padding mask, fp32
softmax, SiLU MLP), full-vocabulary logits and log-softmax [2B, T, V], summed
completion log-probs, the same forward of a frozen reference copy under
no_grad, the sigmoid DPO loss (beta 0.1), backward. No optimizer step (as
prefopt's bench). Shapes: a 34M Llama (hidden 384, 6 layers, 6 heads, 2 KV
heads, intermediate 1024, vocab 32000, untied head), 8 pairs, 256-token
prompts; completion lengths from --lengths (the prefopt bench's JSON
"completion_lengths", so both run the same tokens) or 32-96 drawn here.

Prints one JSON line with the fields of `prefopt bench dpo-step`:
tokens_per_second (prompt once + chosen + rejected per pair, over the median
step time of --steps timed steps after one warm-up), peak_rss_mb (ru_maxrss
of this process), and the settings.
"""
import argparse
import copy
import json
import math
import random
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, INTER, PAIRS, PROMPT = 32000, 384, 6, 6, 2, 1024, 8, 256
HEAD_DIM = HIDDEN // HEADS


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = RMSNorm(HIDDEN)
        self.post_attention_layernorm = RMSNorm(HIDDEN)
        self.q_proj = nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        self.k_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.v_proj = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=False)
        self.o_proj = nn.Linear(HEADS * HEAD_DIM, HIDDEN, bias=False)
        self.gate_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.up_proj = nn.Linear(HIDDEN, INTER, bias=False)
        self.down_proj = nn.Linear(INTER, HIDDEN, bias=False)

    def forward(self, h, cos, sin, bias):
        B, T, _ = h.shape
        x = self.input_layernorm(h)
        q = self.q_proj(x).view(B, T, HEADS, HEAD_DIM).transpose(1, 2)
        k = self.k_proj(x).view(B, T, KV_HEADS, HEAD_DIM).transpose(1, 2)
        v = self.v_proj(x).view(B, T, KV_HEADS, HEAD_DIM).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(HEADS // KV_HEADS, dim=1)  # HF's repeat_kv
        v = v.repeat_interleave(HEADS // KV_HEADS, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(HEAD_DIM) + bias
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, HIDDEN)
        h = h + self.o_proj(o)
        x = self.post_attention_layernorm(h)
        return h + self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Llama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])
        self.norm = RMSNorm(HIDDEN)
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)
        inv = 1.0 / (10000.0 ** (torch.arange(0, HEAD_DIM, 2).float() / HEAD_DIM))
        self.register_buffer("inv_freq", inv, persistent=False)
        for m in self.modules():  # HF's _init_weights
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, 0.02)

    def forward(self, ids, mask):
        B, T = ids.shape
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
        freqs = pos.float().unsqueeze(-1) * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        allowed = causal[None, None] & mask.bool()[:, None, None, :]
        bias = torch.zeros(B, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, cos, sin, bias)
        return self.lm_head(self.norm(h))  # [B, T, V]


def seq_logps(model, ids, mask, labels):
    logits = model(ids, mask)[:, :-1].float()
    lab = labels[:, 1:]
    lp = torch.log_softmax(logits, -1)  # full vocabulary, as TRL
    tok = torch.gather(lp, 2, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (tok * (lab != -100)).sum(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="ATen intra-op threads (prefopt uses 1; BLAS has its own)")
    ap.add_argument("--lengths", default="", help="JSON [[chosen, rejected], ...] completion lengths")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    rnd = random.Random(20241)
    lengths = json.loads(a.lengths) if a.lengths else [[rnd.randint(32, 96), rnd.randint(32, 96)] for _ in range(PAIRS)]
    rows = []
    tokens = 0
    for c, r in lengths:
        prompt = [rnd.randrange(VOCAB) for _ in range(PROMPT)]
        tokens += PROMPT + c + r
        for n in (c, r):
            rows.append((prompt, [rnd.randrange(VOCAB) for _ in range(n)]))
    # concatenated: chosen rows then rejected rows, as TRL's concatenated_inputs
    rows = rows[0::2] + rows[1::2]
    T = max(len(p) + len(c) for p, c in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    for i, (p, c) in enumerate(rows):
        seq = p + c
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(p) : len(seq)] = torch.tensor(c)
    policy = Llama()
    ref = copy.deepcopy(policy).requires_grad_(False)
    beta = 0.1

    def step():
        t = time.perf_counter()
        pl = seq_logps(policy, ids, mask, labels)
        with torch.no_grad():
            rl = seq_logps(ref, ids, mask, labels)
        n = len(lengths)
        logits = beta * ((pl[:n] - rl[:n]) - (pl[n:] - rl[n:]))
        loss = -F.logsigmoid(logits).mean()
        loss.backward()
        s = time.perf_counter() - t
        policy.zero_grad(set_to_none=True)
        return s

    step()
    times = sorted(step() for _ in range(a.steps))
    med = times[len(times) // 2]
    print(json.dumps({
        "bench": "dpo-step", "impl": "pytorch-eager-trl-style", "tokens_per_second": tokens / med,
        "step_seconds": med, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "tokens": tokens, "padded_tokens": 2 * len(lengths) * T, "use_peft": False,
        "gradient_checkpointing": False, "bf16": False, "attention": "eager", "device": "cpu",
        "steps": a.steps, "torch": torch.__version__, "threads": a.threads,
        "parameters": sum(p.numel() for p in policy.parameters()),
    }))


if __name__ == "__main__":
    main()
