# Throwaway: disassembles a JIT page perf-jit.sh copied out of workerd, each instruction with its share of samples.
import sys, subprocess, re
pre, page = sys.argv[1], int(sys.argv[2], 16)
base = page - 0x1000
ips = {int(ip, 16): int(c) for c, ip in (l.split() for l in open(pre + '.ips') if l.strip())}
total = sum(ips.values())
out = subprocess.run(['objdump', '-D', '-b', 'binary', '-mi386:x86-64', f'--adjust-vma={base:#x}', f'{pre}_{page:x}.bin'], capture_output=True, text=True).stdout
hot = [a for a in ips if a & ~0xfff == page]
lo, hi = min(hot) - 0x180, max(hot) + 0x40
for line in out.splitlines():
    m = re.match(r'\s*([0-9a-f]+):\s*(.*)', line)
    if m and lo <= int(m.group(1), 16) <= hi and 'nop' not in line:
        a = int(m.group(1), 16); c = ips.get(a, 0)
        print(f'{100 * c / total:5.1f} ' if c else '      ', f'{a:x}: {m.group(2)[:110]}')
