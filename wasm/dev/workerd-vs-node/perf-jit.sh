#!/bin/bash
# Throwaway: the machine code local workerd runs for a kernel, with perf's samples per instruction. workerd has no
# --perf-prof, so this samples its JIT pages with perf, copies the hottest pages out of /proc/PID/mem while it still
# runs, and disassembles them (objdump). Usage: [Q=q8_0 B=4] wasm/dev/workerd-vs-node/perf-jit.sh OUTPREFIX
# then: python3 wasm/dev/workerd-vs-node/annotate.py OUTPREFIX PAGE (a page address it printed)
set -e
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_HIDE_BANNER=true WRANGLER_SEND_ERROR_REPORTS=false
cd "$(dirname "$0")/../../.."
npx tsx wasm/dev/workerd-vs-node/hammer.mts > "$1.log" 2>&1 &
sleep 14
PID=$(pgrep -f "workerd serve" | tail -1)
perf record -e cpu-clock -p "$PID" -o "$1.data" -- sleep 8 >/dev/null 2>&1
perf script -i "$1.data" -F ip 2>/dev/null | sort | uniq -c | sort -rn > "$1.ips"
python3 - "$PID" "$1" <<'PY'
import sys
pid, pre = int(sys.argv[1]), sys.argv[2]
ips = [(int(c), int(ip, 16)) for c, ip in (l.split() for l in open(pre + '.ips') if l.strip())]
total = sum(c for c, _ in ips)
pages = {}
for c, ip in ips: pages[ip & ~0xfff] = pages.get(ip & ~0xfff, 0) + c
for page, c in sorted(pages.items(), key=lambda x: -x[1])[:4]:
    print(f'{page:x} {c / total:.3f} of samples')
    with open(f'/proc/{pid}/mem', 'rb') as f:
        f.seek(page - 0x1000); data = f.read(0x3000)
    open(f'{pre}_{page:x}.bin', 'wb').write(data)
PY
wait
