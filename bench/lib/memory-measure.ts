/**
 * Memory measurements of the memory benchmark (issue 7): proportional set size of processes
 * (/proc/PID/smaps_rollup) and page-cache residency of files (fincore(1)), with eviction of a
 * file's clean, unmapped pages (`dd iflag=nocache count=0`, i.e. posix_fadvise DONTNEED: pages
 * some process maps stay, so what remains resident afterwards is what containers use).
 */
import * as fs from 'fs';
import { execFileSync, spawnSync } from 'child_process';

/** Fields of smaps_rollup in KiB (Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, ...). */
export type Rollup = Record<string, number>;

/** smaps_rollup of one process in KiB per field, or null if it is gone. */
export function smapsRollup(pid: number): Rollup | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return null;
  }
  const r: Rollup = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) r[m[1]] = Number(m[2]);
  }
  return r;
}

export interface PssTotal {
  processes: number;
  /** KiB, summed over the processes. */
  rss: number;
  pss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
}

/** Sum of smaps_rollup over `pids` (processes that vanished meanwhile are skipped). */
export function sumPss(pids: number[]): PssTotal {
  const t: PssTotal = { processes: 0, rss: 0, pss: 0, pssAnon: 0, pssFile: 0, pssShmem: 0 };
  for (const pid of new Set(pids)) {
    const r = smapsRollup(pid);
    if (!r) continue;
    t.processes++;
    t.rss += r.Rss ?? 0;
    t.pss += r.Pss ?? 0;
    t.pssAnon += r.Pss_Anon ?? 0;
    t.pssFile += r.Pss_File ?? 0;
    t.pssShmem += r.Pss_Shmem ?? 0;
  }
  return t;
}

/** Drops the clean, unmapped page-cache pages of each file. */
export function evict(files: string[]): void {
  for (const f of files) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: 'ignore' });
}

/** Bytes of each file resident in the page cache (fincore), summed. */
export function residentBytes(files: string[]): number {
  let total = 0;
  for (let i = 0; i < files.length; i += 200) {
    const chunk = files.slice(i, i + 200);
    if (!chunk.length) continue;
    const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', ...chunk], { encoding: 'utf8' });
    for (const line of out.split('\n')) if (line.trim()) total += Number(line.trim());
  }
  return total;
}

/** Processes on the host whose command line contains `needle` (not this process), with their PSS. */
export function hostProcesses(needle: string, exclude: Set<number> = new Set()): Array<{ pid: number; cmd: string; pssKiB: number }> {
  const out: Array<{ pid: number; cmd: string; pssKiB: number }> = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || exclude.has(pid)) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (!cmd.includes(needle)) continue;
    out.push({ pid, cmd: cmd.slice(0, 200), pssKiB: smapsRollup(pid)?.Pss ?? 0 });
  }
  return out;
}

/** Cgroup directories (any hierarchy, depth ≤ 3) whose name starts with `prefix`. */
export function cgroupDirs(prefix: string): string[] {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = `${d}/${e.name}`;
      if (e.name.startsWith(prefix)) found.push(p);
      else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

export function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}
