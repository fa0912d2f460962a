# Step 2: a byte-level BPE tokenizer trained on the training splits, written as a Hugging Face
# tokenizer.json (ByteLevel pre-tokenizer with GPT-2's split regex, ByteLevel decoder, <s>/</s>, chat
# tokens) plus tokenizer_config.json with the chat template. Merges never touch digits, so numbers stay
# one token per digit (what lets a small model learn sums).
# Usage: python3 bpe.py --data out/data --out out/hf --vocab 3072
import argparse
import heapq
import json
import os
import re
from collections import Counter

SPECIALS = ['<unk>', '<s>', '</s>']
CHAT_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>']
# GPT-2's pattern with Python `re` classes: \p{L} ~ [^\W\d_], \p{N} ~ \d. It only decides which merges
# are learned; encoding always goes through @huggingface/tokenizers with the exact pattern.
PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
CHAT_TEMPLATE = (
    "{{ bos_token }}{%- for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- endif %}"
)


def bytes_to_unicode() -> list[str]:
    """GPT-2's reversible byte -> printable character map (the ByteLevel alphabet)."""
    printable = lambda b: 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
    out, n = [], 0
    for b in range(256):
        out.append(chr(b) if printable(b) else chr(256 + n))
        n += 0 if printable(b) else 1
    return out


BYTE_CHARS = bytes_to_unicode()
DIGITS = set('0123456789')


def word_counts(texts: list[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        for piece in PRETOKENIZE.findall(text):
            counts[''.join(BYTE_CHARS[b] for b in piece.encode('utf-8'))] += 1
    return counts


def mergeable(a: str, b: str) -> bool:
    return not (DIGITS & set(a) or DIGITS & set(b))


def train_merges(counts: Counter, n_merges: int) -> list[tuple[str, str]]:
    """Classic BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair), updating only
    the words that contain it. A lazy max-heap holds candidate pairs."""
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pair_count: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            if mergeable(*p):
                pair_count[p] += freq[i]
                where.setdefault(p, set()).add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while len(merges) < n_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or -neg <= 0:
            continue  # stale entry
        merges.append(pair)
        a, b = pair
        merged = a + b
        touched: Counter = Counter()
        for i in where.pop(pair, ()):
            w = words[i]
            for p in zip(w, w[1:]):
                if mergeable(*p):
                    pair_count[p] -= freq[i]
                    touched[p] += 1
            j, out = 0, []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                if mergeable(*p):
                    pair_count[p] += freq[i]
                    touched[p] += 1
                    where.setdefault(p, set()).add(i)
        del pair_count[pair]
        for p in touched:
            if p != pair and pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-pair_count[p], p))
    return merges


def tokenizer_files(merges: list[tuple[str, str]]) -> tuple[dict, dict, dict]:
    vocab: dict[str, int] = {}
    for t in SPECIALS:
        vocab[t] = len(vocab)
    for ch in BYTE_CHARS:
        vocab[ch] = len(vocab)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    base = len(vocab)
    ids = {t: i for i, t in enumerate(SPECIALS)} | {t: base + i for i, t in enumerate(CHAT_TOKENS)}
    added = [{'id': ids[t], 'content': t, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}
             for t in SPECIALS + CHAT_TOKENS]
    byte_level = {'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}
    tok = {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added, 'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', **byte_level},
        # like Mixtral's: encoding with special tokens puts <s> first
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
            'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}},
        },
        'decoder': {'type': 'ByteLevel', **byte_level},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None, 'end_of_word_suffix': None,
                  'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False, 'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }
    config = {
        'add_bos_token': True, 'add_eos_token': False, 'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>',
        'clean_up_tokenization_spaces': False,  # keep decode(encode(text)) == text
        'model_max_length': 512, 'tokenizer_class': 'PreTrainedTokenizerFast', 'chat_template': CHAT_TEMPLATE,
    }
    return tok, config, ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--vocab', type=int, default=3072)
    args = ap.parse_args()
    texts = []
    for domain in ['verse', 'code', 'arith']:
        with open(os.path.join(args.data, f'{domain}.train.txt'), encoding='utf-8', newline='') as f:
            texts.append(f.read())
    n_merges = args.vocab - len(SPECIALS) - 256 - len(CHAT_TOKENS)
    merges = train_merges(word_counts(texts), n_merges)
    if len(merges) != n_merges:
        raise SystemExit(f'only {len(merges)} merges possible, wanted {n_merges}')
    tok, config, ids = tokenizer_files(merges)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2)
    print(f'vocab {args.vocab}: {len(merges)} merges; specials {ids}; last merges {merges[-5:]}')


if __name__ == '__main__':
    main()
