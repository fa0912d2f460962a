# Writes a tiny random Qwen3-MoE checkpoint (config.json, model.safetensors in BF16) and reference.json:
# logits from an independent float64 forward pass written from the published Hugging Face formulas
# (transformers' modeling_qwen3_moe.py). No shared fixture covers qwen3_moe, so this is its ground truth.
#
#   /usr/bin/python3 test/unit/engine/data/qwen3_moe/make_reference.py   (needs torch + numpy, e.g. Debian's python3-torch)
#
# What it exercises: q_norm/k_norm as RMSNorm over each head (weights of head_dim, shared by all heads),
# head_dim (16) != hidden_size / num_attention_heads (32 / 4 = 8), GQA (4 heads over 2 kv heads),
# norm_topk_prob = true with top-3 of 8 experts, rope_theta 1e6, rms_norm_eps 1e-6, random norm weights.
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 7

CONFIG = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "model_type": "qwen3_moe",
    "vocab_size": 160,
    "hidden_size": 32,
    "intermediate_size": 64,  # dense MLP width: unused, every layer is sparse
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "use_sliding_window": False,
    "sliding_window": None,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "num_experts": 8,
    "num_experts_per_tok": 3,
    "norm_topk_prob": True,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "bfloat16",
}
TOKENS = [1, 154, 17, 99, 3, 47, 140, 29, 70, 38, 85, 120, 33, 107, 65, 105, 84, 106, 150, 149, 70, 145, 116, 68]


def make_weights(gen):
    c = CONFIG
    H, V, hd = c["hidden_size"], c["vocab_size"], c["head_dim"]
    nq, nkv, E, I = c["num_attention_heads"], c["num_key_value_heads"], c["num_experts"], c["moe_intermediate_size"]

    def mat(rows, cols, std):
        return torch.randn(rows, cols, generator=gen, dtype=torch.float64) * std

    def norm(n):
        return 1.0 + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64)

    w = {"model.embed_tokens.weight": mat(V, H, 1.0)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        w[f"{p}.input_layernorm.weight"] = norm(H)
        w[f"{p}.self_attn.q_proj.weight"] = mat(nq * hd, H, H ** -0.5)
        w[f"{p}.self_attn.k_proj.weight"] = mat(nkv * hd, H, H ** -0.5)
        w[f"{p}.self_attn.v_proj.weight"] = mat(nkv * hd, H, H ** -0.5)
        w[f"{p}.self_attn.o_proj.weight"] = mat(H, nq * hd, (nq * hd) ** -0.5)
        w[f"{p}.self_attn.q_norm.weight"] = norm(hd)
        w[f"{p}.self_attn.k_norm.weight"] = norm(hd)
        w[f"{p}.post_attention_layernorm.weight"] = norm(H)
        w[f"{p}.mlp.gate.weight"] = mat(E, H, 2 * H ** -0.5)
        for e in range(E):
            q = f"{p}.mlp.experts.{e}"
            w[f"{q}.gate_proj.weight"] = mat(I, H, H ** -0.5)
            w[f"{q}.up_proj.weight"] = mat(I, H, H ** -0.5)
            w[f"{q}.down_proj.weight"] = mat(H, I, I ** -0.5)
    w["model.norm.weight"] = norm(H)
    w["lm_head.weight"] = mat(V, H, H ** -0.5)
    # the checkpoint holds BF16 (as Qwen3 releases do); the reference computes with exactly those values
    return {k: v.to(torch.bfloat16).to(torch.float64) for k, v in w.items()}


def rms_norm(x, weight, eps):
    # Qwen3MoeRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, over the last axis
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope(x, positions, theta, interleaved=False):
    # x (heads, T, hd); HF default RoPE: inv_freq_i = theta^(-2i/hd), cos/sin of cat(freqs, freqs), rotate_half
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = positions[:, None].to(torch.float64) * inv_freq[None, :]  # (T, hd/2)
    if interleaved:  # adjacent pairs (a deliberate bug, for the sensitivity table)
        cos, sin = freqs.cos().repeat_interleave(2, -1), freqs.sin().repeat_interleave(2, -1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        rot = torch.stack((-x2, x1), dim=-1).flatten(-2)
        return x * cos + rot * sin
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def forward(w, tokens, bug=None):
    """Logits (T, vocab) for `tokens` read as one causal batch; float64 throughout. `bug` toggles one feature."""
    c = CONFIG
    H, hd, eps = c["hidden_size"], c["head_dim"], c["rms_norm_eps"]
    nq, nkv, E, K = c["num_attention_heads"], c["num_key_value_heads"], c["num_experts"], c["num_experts_per_tok"]
    T = len(tokens)
    pos = torch.arange(T)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]  # (T, H)
    routing = []
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"], eps)
        q = (h @ w[f"{p}.self_attn.q_proj.weight"].T).view(T, nq, hd)
        k = (h @ w[f"{p}.self_attn.k_proj.weight"].T).view(T, nkv, hd)
        v = (h @ w[f"{p}.self_attn.v_proj.weight"].T).view(T, nkv, hd)
        if bug != "no_qk_norm":  # q_norm / k_norm act on the head_dim axis of (T, heads, hd)
            q = rms_norm(q, w[f"{p}.self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[f"{p}.self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # (heads, T, hd)
        q = rope(q, pos, c["rope_theta"], bug == "rope_interleaved")
        k = rope(k, pos, c["rope_theta"], bug == "rope_interleaved")
        # repeat_kv: query head i reads kv head i // (nq / nkv)
        k = k.repeat_interleave(nq // nkv, dim=0)
        v = v.repeat_interleave(nq // nkv, dim=0)
        scores = (q @ k.transpose(1, 2)) * hd ** -0.5
        scores = scores + torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), diagonal=1)
        attn = torch.softmax(scores, dim=-1) @ v  # (heads, T, hd)
        attn = attn.transpose(0, 1).reshape(T, nq * hd)
        x = x + attn @ w[f"{p}.self_attn.o_proj.weight"].T

        h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
        probs = torch.softmax(h @ w[f"{p}.mlp.gate.weight"].T, dim=-1)  # (T, E)
        top, idx = torch.topk(probs, K, dim=-1)
        if c["norm_topk_prob"] != (bug == "flip_norm_topk"):
            top = top / top.sum(dim=-1, keepdim=True)
        moe = torch.zeros_like(x)
        for t in range(T):
            for s in range(K):
                e = int(idx[t, s])
                q_ = f"{p}.mlp.experts.{e}"
                g = h[t] @ w[f"{q_}.gate_proj.weight"].T
                u = h[t] @ w[f"{q_}.up_proj.weight"].T
                moe[t] += top[t, s] * ((torch.nn.functional.silu(g) * u) @ w[f"{q_}.down_proj.weight"].T)
        # distance between the k-th and (k+1)-th probability: a float32 engine must make the same choice
        sorted_probs = torch.sort(probs, dim=-1, descending=True).values
        margin = float((sorted_probs[:, K - 1] - sorted_probs[:, K]).min())
        routing.append({"experts": idx.tolist(), "weights": top.tolist(), "min_margin": margin})
        x = x + moe
    x = rms_norm(x, w["model.norm.weight"], eps)
    return x @ w["lm_head.weight"].T, routing


def bf16_bytes(t):
    return t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()


def write_safetensors(path, w):
    header, chunks, at = {}, [], 0
    for name in sorted(w):
        b = bf16_bytes(w[name])
        header[name] = {"dtype": "BF16", "shape": list(w[name].shape), "data_offsets": [at, at + len(b)]}
        chunks.append(b)
        at += len(b)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in chunks:
            f.write(b)


def main():
    w = make_weights(torch.Generator().manual_seed(SEED))
    logits, routing = forward(w, TOKENS)
    margin = min(r["min_margin"] for r in routing)
    assert margin > 1e-4, f"seed {SEED}: a top-k choice is within {margin} of a tie; pick another seed"
    sensitivity = {}
    for bug in ["no_qk_norm", "flip_norm_topk", "rope_interleaved"]:
        sensitivity[bug] = float((forward(w, TOKENS, bug)[0] - logits).abs().max())
    write_safetensors(os.path.join(HERE, "model.safetensors"), w)
    with open(os.path.join(HERE, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    ref = {
        "note": "float64 forward pass from HF's Qwen3-MoE formulas (make_reference.py); logits[i] follows tokens[0..i]",
        "tokens": TOKENS,
        "logits": [[float(f"{v:.9g}") for v in row] for row in logits.tolist()],
        "routing": [{"experts": r["experts"], "weights": [[round(v, 9) for v in row] for row in r["weights"]]} for r in routing],
        "min_topk_margin": margin,
        "sensitivity": sensitivity,
    }
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(f"min top-k margin {margin:.3g}; sensitivity {sensitivity}; logits range {float(logits.min()):.3f}..{float(logits.max()):.3f}")


if __name__ == "__main__":
    main()
