# Step 4: trains the MoE on the three domains (plus chat-formatted examples) and exports a Hugging Face
# checkpoint folder (config.json, model.safetensors, generation_config.json next to the tokenizer files).
# Rows are <s> + tokens from a random line start of one domain; every batch mixes the domains, so the
# load-balancing loss balances experts over the mixture and leaves them free to specialise per domain.
# Rows are 256 tokens for the first 75% of the run (a third cheaper per token), then the full 512 context.
# Matmuls run under bf16 autocast (this CPU has AVX512-BF16: ~3x faster); weights and optimiser stay f32.
# Usage: python3 train.py --data out/data --hf out/hf --log logs/train-<date>.log [--steps n]
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import Config, MixtralForCausalLM, load_balancing_loss
from safetensors_io import save_file

DOMAINS = ['verse', 'code', 'arith', 'chat']
ROWS = {'verse': 3, 'code': 3, 'arith': 3, 'chat': 1}  # rows of each domain in every batch
BOS = 1


def load_ids(data: str, name: str) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(os.path.join(data, f'{name}.ids'), dtype='<u2').astype(np.int64))


class Batches:
    """Seeded rows, ROWS[d] of domain d in every batch, so every batch has the same mix."""

    def __init__(self, data: str, seq: int, seed: int, newline_ids: list[int]):
        self.streams = {d: load_ids(data, f'{d}.train') for d in DOMAINS}
        # rows start at a line start, as prompts do (right after <s>): positions just after a token
        # that holds a newline
        nl = torch.tensor(sorted(newline_ids))
        self.line_starts = {}
        for d in DOMAINS:
            s = self.streams[d]
            starts = torch.nonzero(torch.isin(s[:-1], nl)).flatten() + 1
            self.line_starts[d] = starts[starts + seq <= len(s)]  # room for the longest row
        # chat rows start at a conversation's <s>, as the chat template renders it
        self.chat_starts = torch.nonzero(self.streams['chat'] == BOS).flatten()
        self.chat_starts = self.chat_starts[self.chat_starts + seq <= len(self.streams['chat'])]
        self.seq = seq
        self.gen = torch.Generator().manual_seed(seed)

    def next(self, seq: int) -> tuple[torch.Tensor, list[str]]:
        """ROWS[d] * (self.seq // seq) rows of seq + 1 tokens per domain: the same tokens per batch at any seq."""
        rows, labels = [], []
        for d in DOMAINS:
            s = self.streams[d]
            for _ in range(ROWS[d] * (self.seq // seq)):
                if d == 'chat':
                    i = int(self.chat_starts[torch.randint(len(self.chat_starts), (1,), generator=self.gen)])
                    rows.append(s[i:i + seq + 1])
                else:
                    starts = self.line_starts[d]
                    i = int(starts[torch.randint(len(starts), (1,), generator=self.gen)])
                    rows.append(torch.cat([torch.tensor([BOS]), s[i:i + seq]]))
                labels.append(d)
        return torch.stack(rows), labels


@torch.no_grad()
def heldout_loss(model: MixtralForCausalLM, data: str, seq: int, windows: int = 4) -> dict[str, float]:
    """Mean next-token loss on the first `windows` held-out windows of each domain (a progress signal only)."""
    out = {}
    for d in ['verse', 'code', 'arith']:
        ids = load_ids(data, f'{d}.heldout')
        n = seq - 1
        rows = [torch.cat([torch.tensor([BOS]), ids[i * n:(i + 1) * n]]) for i in range(windows)]
        x = torch.stack(rows)
        logits, _ = model(x[:, :-1])
        out[d] = round(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item(), 4)
    return out


class SumsProbe:
    """Greedy answers to the 100 held-out small sums, scored on token ids: the share of the card's metric
    reached so far, logged with the held-out losses (evaluate.py and the engine score the final model)."""

    def __init__(self, data: str, newline_ids: list[int]):
        with open(os.path.join(data, 'sums.heldout.json')) as f:
            sums = json.load(f)
        with open(os.path.join(data, 'prompts.tokens.json')) as f:
            ids = json.load(f)
        self.cases = [([BOS] + ids[s['prompt']], ids[s['answer']]) for s in sums]
        self.newline = set(newline_ids)

    @torch.no_grad()
    def correct(self, model: MixtralForCausalLM) -> int:
        ok = 0
        for prompt, answer in self.cases:
            x = list(prompt)
            for _ in range(len(answer) + 1):
                logits, _ = model(torch.tensor([x]))
                x.append(int(logits[0, -1].argmax()))
            got = x[len(prompt):]
            ok += got[:-1] == answer and got[-1] in self.newline
        return ok


def lr_at(step: int, progress: float, peak: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine to 10% of peak as `progress` goes 0 -> 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def export(model: MixtralForCausalLM, hf: str, tokenizer_ids: dict[str, int]) -> None:
    os.makedirs(hf, exist_ok=True)
    with open(os.path.join(hf, 'config.json'), 'w') as f:
        json.dump(model.cfg.hf_config(), f, indent=2)
    with open(os.path.join(hf, 'generation_config.json'), 'w') as f:
        # <|end|> closes an assistant turn: generation stops there as at </s>
        json.dump({'bos_token_id': BOS, 'eos_token_id': [2, tokenizer_ids['<|end|>']], 'do_sample': True, 'temperature': 0.7, 'top_p': 0.95}, f, indent=2)
    save_file({k: v for k, v in model.state_dict().items()}, os.path.join(hf, 'model.safetensors'), {'format': 'pt'})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--hf', required=True, help='HF folder: reads tokenizer.json, writes the checkpoint')
    ap.add_argument('--log', required=True)
    ap.add_argument('--steps', type=int, default=2000, help='at most this many steps')
    ap.add_argument('--minutes', type=float, default=55, help='and at most this much training time')
    ap.add_argument('--seq', type=int, default=512, help='context length, trained at the end of the run')
    ap.add_argument('--short-seq', type=int, default=256, help='row length before --short-until (attention costs less)')
    ap.add_argument('--short-until', type=float, default=0.75, help='progress at which rows grow to --seq')
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--aux', type=float, default=0.01, help='load-balancing loss coefficient')
    ap.add_argument('--log-every', type=int, default=20)
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with open(os.path.join(args.hf, 'tokenizer.json'), encoding='utf-8') as f:
        tok = json.load(f)
    ids = {t['content']: t['id'] for t in tok['added_tokens']}
    vocab = max(max(tok['model']['vocab'].values()), max(ids.values())) + 1
    cfg = Config(vocab_size=vocab, max_position_embeddings=args.seq)
    model = MixtralForCausalLM(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}], lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    newline_ids = [i for t, i in tok['model']['vocab'].items() if '\u010a' in t]  # 'Ċ' is the newline byte
    batches = Batches(args.data, args.seq, args.seed, newline_ids)
    sums_probe = SumsProbe(args.data, newline_ids)

    os.makedirs(os.path.dirname(args.log) or '.', exist_ok=True)
    log = open(args.log, 'w', buffering=1)
    def say(obj: dict) -> None:
        line = json.dumps(obj)
        log.write(line + '\n')
        print(line, flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    say({'event': 'start', 'args': vars(args), 'rows': ROWS, 'config': cfg.hf_config(), 'params': n_params, 'torch': torch.__version__, 'time': time.strftime('%Y-%m-%d %H:%M:%S')})

    t0 = time.time()
    acc = {'loss': 0.0, 'aux': 0.0, 'n': 0}
    # progress is the larger of the step and the time fractions: on an idle machine the step cap ends the run
    # (the same run every time); when other work slows the 2 cores, the time budget ends it, still annealed
    progress = 0.0
    step = -1
    tokens = 0
    while progress < 1.0:
        step += 1
        lr = lr_at(step, progress, args.lr, args.warmup)
        for g in opt.param_groups:
            g['lr'] = lr
        x, _ = batches.next(args.short_seq if progress < args.short_until else args.seq)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            logits, routers = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
        aux = load_balancing_loss(routers, cfg.num_experts_per_tok)
        opt.zero_grad(set_to_none=True)
        (loss + args.aux * aux).backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        acc['loss'] += loss.item()
        acc['aux'] += aux.item()
        acc['n'] += 1
        tokens += x[:, 1:].numel()
        elapsed = time.time() - t0
        progress = max((step + 1) / args.steps, elapsed / (args.minutes * 60))
        if (step + 1) % args.log_every == 0:
            say({'step': step + 1, 'loss': round(acc['loss'] / acc['n'], 4), 'aux': round(acc['aux'] / acc['n'], 4), 'lr': round(lr, 6),
                 'gnorm': round(float(gnorm), 3), 'seq': x.shape[1] - 1, 'tok_s': round(tokens / elapsed), 'cpu_min': round(time.process_time() / 60, 2), 'min': round(elapsed / 60, 2)})
            acc = {'loss': 0.0, 'aux': 0.0, 'n': 0}
        if (step + 1) % 200 == 0 or progress >= 1.0:
            model.eval()
            say({'step': step + 1, 'heldout_loss': heldout_loss(model, args.data, args.seq), 'sums_correct': sums_probe.correct(model)})
            model.train()
    minutes = (time.time() - t0) / 60
    export(model, args.hf, ids)
    say({'event': 'done', 'steps': step + 1, 'ended_by': 'steps' if step + 1 >= args.steps else 'time', 'tokens': tokens, 'minutes': round(minutes, 2), 'cpu_minutes': round(time.process_time() / 60, 2), 'params': n_params})


if __name__ == '__main__':
    main()
