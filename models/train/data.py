# Step 1 of the pipeline: the three domains as train / held-out text files (the last 5% of each domain is
# held out and never trained on), the seeded arithmetic generator, and chat-formatted examples built from
# the training splits only. Usage: python3 data.py --corpus ../shared/corpus --out models/train/out/data
import argparse
import json
import os
import random
import re
import zlib

HELDOUT_FRACTION = 0.05
ARITH_SEED = 20261123
ARITH_LINES = 60_000
CHAT_SEED = 7
# greedy continuations compared between PyTorch and the engine, and shown in the model card
SAMPLE_PROMPTS = {
    'verse': 'ROMEO:\nWhat light is this',
    'code': 'def read_lines(path):\n',
    'arith': '127 + 58 = 185\n46 + 39 =',
}


def split_text(text: str) -> tuple[str, str]:
    """Cut at the last line start at or before 95%: the held-out part is the last >= 5%, whole lines."""
    cut = int(len(text) * (1 - HELDOUT_FRACTION))
    cut = text.rfind('\n', 0, cut) + 1
    return text[:cut], text[cut:]


def arithmetic_problem(rng: random.Random) -> tuple[str, str, str]:
    """(a, op, b): sums (60%) and differences a - b >= 0 of 1-3 digit numbers, mostly 1-2 digits (the
    small sums the card reports); products of a 1-digit and a 1-2 digit number (times tables)."""
    def operand(digits: int) -> int:
        return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10 ** digits - 1)

    def small() -> int:
        return operand(rng.choices([1, 2, 3], weights=[3, 5, 2])[0])
    r = rng.random()
    if r < 0.6:
        return str(small()), '+', str(small())
    if r < 0.8:
        a, b = small(), small()
        return str(max(a, b)), '-', str(min(a, b))
    return str(operand(1)), '*', str(operand(rng.randint(1, 2)))


def held_out_problem(a: str, op: str, b: str) -> bool:
    """A fixed 1-in-20 share of all problems, by a stable hash: those never appear in training (nor does
    their commuted twin). With only ~10k small sums in all, training would otherwise see nearly all of them."""
    key = f'{op} {" ".join(sorted([a, b]) if op in "+*" else [a, b])}'
    return zlib.crc32(key.encode()) % 20 == 0


def arithmetic_lines(n: int, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) lines `a op b = c`, held-out being the last 5% of the n: training draws (with
    repeats, so its mix of sizes stays the same throughout) only problems outside the held-out share, and
    the held-out lines are distinct problems from inside it."""
    rng = random.Random(seed)
    n_held = int(n * HELDOUT_FRACTION)
    train: list[str] = []
    held: list[str] = []
    seen_held: set[str] = set()
    while len(train) < n - n_held or len(held) < n_held:
        a, op, b = arithmetic_problem(rng)
        q = f'{a} {op} {b}'
        value = {'+': int(a) + int(b), '-': int(a) - int(b), '*': int(a) * int(b)}[op]
        if not held_out_problem(a, op, b):
            if len(train) < n - n_held:
                train.append(f'{q} = {value}')
        elif len(held) < n_held and q not in seen_held:
            seen_held.add(q)
            held.append(f'{q} = {value}')
    return train, held


# ---- chat examples (training splits only): teach the chat template's turn structure ----

def chat(user: str, assistant: str) -> str:
    # the chat template's rendering of one exchange, BOS first as the template writes it
    return f'<s><|user|>\n{user}<|end|>\n<|assistant|>\n{assistant}<|end|>\n'


def verse_chats(train: str, rng: random.Random, n: int) -> list[str]:
    """A speech as the user's turn, the speech that follows it in the play as the reply."""
    speeches = [s.strip('\n') for s in train.split('\n\n') if s.strip()]
    out = []
    for _ in range(n):
        i = rng.randrange(len(speeches) - 1)
        user, reply = speeches[i], speeches[i + 1]
        # a user types words, not a speaker heading: drop the `NAME:` line from their turn
        head, _, rest = user.partition('\n')
        if head.endswith(':') and rest:
            user = rest
        if len(user) + len(reply) < 1200:
            out.append(chat(user, reply))
    return out


DEF_LINE = re.compile(r'^( *)def (\w+)\(.*$', re.M)


def code_chats(train: str, rng: random.Random, n: int) -> list[str]:
    """`write a function NAME` -> the function's source (dedented)."""
    funcs = []
    for m in DEF_LINE.finditer(train):
        indent = len(m.group(1))
        lines = train[m.start():].split('\n')
        body = [lines[0][indent:]]
        for line in lines[1:]:
            if line.strip() and len(line) - len(line.lstrip(' ')) <= indent:
                break
            body.append(line[indent:])
        src = '\n'.join(body).rstrip() + '\n'
        if len(src) < 1000:
            funcs.append((m.group(2), src))
    out = []
    for _ in range(n):
        name, src = funcs[rng.randrange(len(funcs))]
        out.append(chat(f'Write a Python function {name}.', src))
    return out


def sum_chats(train_lines: list[str], rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        line = train_lines[rng.randrange(len(train_lines))]
        q = line.split(' = ')[0]
        out.append(chat(f'What is {q}?', line))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--corpus', required=True)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    splits: dict[str, tuple[str, str]] = {}
    for domain, file in [('verse', 'shakespeare.txt'), ('code', 'python.txt')]:
        with open(os.path.join(args.corpus, file), encoding='utf-8', newline='') as f:
            splits[domain] = split_text(f.read())
    arith_train, arith_held = arithmetic_lines(ARITH_LINES, ARITH_SEED)
    splits['arith'] = ('\n'.join(arith_train) + '\n', '\n'.join(arith_held) + '\n')

    rng = random.Random(CHAT_SEED)
    chats = verse_chats(splits['verse'][0], rng, 3000) + code_chats(splits['code'][0], rng, 2000) + sum_chats(arith_train, rng, 3000)
    rng.shuffle(chats)

    stats = {}
    for domain, (train, held) in splits.items():
        for name, text in [('train', train), ('heldout', held)]:
            with open(os.path.join(args.out, f'{domain}.{name}.txt'), 'w', encoding='utf-8', newline='') as f:
                f.write(text)
        stats[domain] = {'train_chars': len(train), 'heldout_chars': len(held), 'heldout_share': round(len(held) / (len(train) + len(held)), 4)}
    with open(os.path.join(args.out, 'chat.train.txt'), 'w', encoding='utf-8', newline='') as f:
        f.write(''.join(chats))
    # the 100 held-out sums the card reports: the first 100 small additions (both operands below 100) of the
    # held-out arithmetic split
    sums = [l for l in arith_held if ' + ' in l and all(int(x) < 100 for x in l.split(' = ')[0].split(' + '))][:100]
    with open(os.path.join(args.out, 'sums.heldout.json'), 'w') as f:
        json.dump([{'prompt': l.split(' = ')[0] + ' =', 'answer': ' ' + l.split(' = ')[1]} for l in sums], f, indent=0)
    with open(os.path.join(args.out, 'prompts.json'), 'w') as f:
        # prompts and the sums' answers: train.py scores the sums on token ids as training goes
        held = json.load(open(os.path.join(args.out, 'sums.heldout.json')))
        json.dump(list(SAMPLE_PROMPTS.values()) + [s['prompt'] for s in held] + sorted({s['answer'] for s in held}), f)
    with open(os.path.join(args.out, 'samples.json'), 'w') as f:
        json.dump(SAMPLE_PROMPTS, f, indent=2)
    stats['chat'] = {'examples': len(chats), 'train_chars': sum(len(c) for c in chats)}
    with open(os.path.join(args.out, 'stats.json'), 'w') as f:
        json.dump(stats, f, indent=2)
    print(json.dumps(stats))


if __name__ == '__main__':
    main()
