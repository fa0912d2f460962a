// Node only: what the results were measured on (CPU, cache, runtimes, load), recorded beside them.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';

export interface MachineInfo {
  cpu: string;
  cpuId: string; // family/model/stepping: "AMD EPYC" alone does not say which generation
  cores: number;
  l3: string | null;
  node: string;
  wrangler: string;
  workerd: string; // the workerd binary wrangler runs (its own dependency, not necessarily the top-level one)
  loadavg: number[]; // 1/5/15-minute load when the run started: > cores means the numbers are noisy
}

function cpuinfoField(text: string, key: string): string | undefined {
  return text.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm'))?.[1];
}

function versionOf(pkgJson: string): string {
  return (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
}

/** wrangler's version and its workerd's; 'absent' where they are not installed (bench/gpu's device machine). */
function workersToolchain(): { wrangler: string; workerd: string } {
  try {
    const wranglerPkg = createRequire(import.meta.url).resolve('wrangler/package.json');
    const miniflare = createRequire(wranglerPkg).resolve('miniflare');
    return { wrangler: versionOf(wranglerPkg), workerd: versionOf(createRequire(miniflare).resolve('workerd/package.json')) };
  } catch {
    return { wrangler: 'absent', workerd: 'absent' };
  }
}

export function machineInfo(): MachineInfo {
  let text = '';
  try { text = readFileSync('/proc/cpuinfo', 'utf8'); } catch { /* not Linux */ }
  let l3: string | null = null;
  try { l3 = readFileSync('/sys/devices/system/cpu/cpu0/cache/index3/size', 'utf8').trim(); } catch { /* no sysfs */ }
  return {
    cpu: cpuinfoField(text, 'model name') ?? cpus()[0]?.model ?? 'unknown',
    cpuId: `family ${cpuinfoField(text, 'cpu family') ?? '?'} model ${cpuinfoField(text, 'model') ?? '?'} stepping ${cpuinfoField(text, 'stepping') ?? '?'}`,
    cores: cpus().length,
    l3,
    node: process.version,
    ...workersToolchain(),
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
