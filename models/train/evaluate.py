# Step 5: the PyTorch (f32) side of the evaluation, run on the exported HF checkpoint (so it also checks
# the export): held-out perplexity per domain (windows as tools/perplexity.ts cuts them), routing counts
# per layer and domain, greedy continuations of the sample prompts, the 100 held-out sums, and short
# reference excerpts (per-position NLL) that the unit tests compare the engine with.
# Usage: python3 evaluate.py --data out/data --hf out/hf --out out/eval-torch.json
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import Config, MixtralForCausalLM
from safetensors_io import load_file

DOMAINS = ['verse', 'code', 'arith']
EXCERPT_TOKENS = 128  # per domain, for the unit tests
GREEDY_TOKENS = 48


def load_model(hf: str) -> MixtralForCausalLM:
    with open(os.path.join(hf, 'config.json')) as f:
        c = json.load(f)
    fields = Config.__dataclass_fields__
    model = MixtralForCausalLM(Config(**{k: v for k, v in c.items() if k in fields}))
    model.load_state_dict(load_file(os.path.join(hf, 'model.safetensors')), strict=True)
    return model.eval()


class Decoder:
    """Byte-level BPE ids -> text, from tokenizer.json alone."""

    def __init__(self, hf: str):
        with open(os.path.join(hf, 'tokenizer.json'), encoding='utf-8') as f:
            tok = json.load(f)
        from bpe import BYTE_CHARS
        self.byte_of = {ch: b for b, ch in enumerate(BYTE_CHARS)}
        self.pieces = {i: t for t, i in tok['model']['vocab'].items()}
        self.special = {t['id']: t['content'] for t in tok['added_tokens']}

    def __call__(self, ids: list[int]) -> str:
        out = bytearray()
        for i in ids:
            if i in self.special:
                continue  # as decode(skip_special_tokens) does
            out += bytes(self.byte_of[ch] for ch in self.pieces[i])
        return out.decode('utf-8', errors='replace')


@torch.no_grad()
def score(model: MixtralForCausalLM, tokens: list[int], window: int, bos: int) -> tuple[list[float], np.ndarray]:
    """Per-token NLL (nats) of `tokens`, windows of <s> + (window - 1) tokens; routing counts (L, E) over
    every position fed (the <s> included)."""
    cfg = model.cfg
    counts = np.zeros((cfg.num_hidden_layers, cfg.num_local_experts), dtype=np.int64)
    nll: list[float] = []
    piece = window - 1
    for i in range(0, len(tokens), piece):
        seq = torch.tensor([[bos] + tokens[i:i + piece]])
        logits, routers = model(seq)
        logp = torch.log_softmax(logits[0, :-1].double(), dim=-1)
        nll += (-logp.gather(1, seq[0, 1:, None])).flatten().tolist()
        for l, r in enumerate(routers):
            chosen = torch.softmax(r.float(), dim=-1).topk(cfg.num_experts_per_tok, dim=-1).indices
            counts[l] += np.bincount(chosen.flatten().numpy(), minlength=cfg.num_local_experts)
    return nll, counts


@torch.no_grad()
def greedy(model: MixtralForCausalLM, prompt: list[int], n: int, stop: set[int]) -> list[int]:
    seq = list(prompt)
    out: list[int] = []
    for _ in range(n):
        logits, _ = model(torch.tensor([seq]))
        t = int(logits[0, -1].argmax())
        if t in stop:
            break
        out.append(t)
        seq.append(t)
    return out


def top2_share(counts: np.ndarray) -> list[dict]:
    rows = []
    for c in counts:
        order = np.argsort(-c, kind='stable')
        rows.append({'top2': [int(order[0]), int(order[1])], 'share': round(float(c[order[:2]].sum() / c.sum()), 4), 'counts': c.tolist()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--hf', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = load_model(args.hf)
    cfg = model.cfg
    decode = Decoder(args.hf)
    with open(os.path.join(args.hf, 'generation_config.json')) as f:
        stop = set(json.load(f)['eos_token_id'])
    bos = cfg.bos_token_id
    window = cfg.max_position_embeddings

    result: dict = {'window': window, 'domains': {}, 'excerpts': {}}
    for d in DOMAINS:
        ids = np.fromfile(os.path.join(args.data, f'{d}.heldout.ids'), dtype='<u2').astype(int).tolist()
        nll, counts = score(model, ids, window, bos)
        mean = float(np.mean(nll))
        result['domains'][d] = {'tokens': len(ids), 'nll': round(mean, 6), 'perplexity': round(float(np.exp(mean)), 4), 'routing': top2_share(counts)}
        ex = ids[:EXCERPT_TOKENS]
        result['excerpts'][d] = {'text': decode(ex), 'tokens': ex, 'nll': [round(x, 5) for x in nll[:EXCERPT_TOKENS]]}
        print(d, result['domains'][d]['perplexity'], [r['share'] for r in result['domains'][d]['routing']], flush=True)

    with open(os.path.join(args.data, 'prompts.tokens.json')) as f:
        prompt_ids = json.load(f)
    with open(os.path.join(args.data, 'samples.json')) as f:
        samples = json.load(f)
    result['greedy'] = {}
    for d, prompt in samples.items():
        toks = greedy(model, [bos] + prompt_ids[prompt], GREEDY_TOKENS, stop)
        result['greedy'][d] = {'prompt': prompt, 'tokens': toks, 'text': decode(toks)}
        print(d, repr(prompt + decode(toks)), flush=True)

    with open(os.path.join(args.data, 'sums.heldout.json')) as f:
        sums = json.load(f)
    newline = {i for i, p in decode.pieces.items() if 'Ċ' in p}  # any token holding a newline ends the answer
    answers = []
    for s in sums:
        toks = greedy(model, [bos] + prompt_ids[s['prompt']], 8, stop | newline)
        got = decode(toks)
        answers.append({'prompt': s['prompt'], 'expected': s['answer'], 'got': got, 'ok': got == s['answer']})
    result['sums'] = {'correct': sum(a['ok'] for a in answers), 'total': len(answers), 'answers': answers}
    print('sums', result['sums']['correct'], '/', len(answers), flush=True)
    result['seconds'] = round(time.time() - t0, 1)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main()
