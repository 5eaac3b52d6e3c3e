/**
 * TAP output and the outcome types cases report through.
 *
 * A case passes by returning, fails by throwing (a {@link CaseFailure} carries a diagnostic
 * object), and skips by throwing {@link CaseSkip}. The runner turns outcomes into TAP lines and
 * ends with the summary line `N passed, N failed, N skipped` that the project harness parses.
 */

/** Thrown by a case to fail with a structured diagnostic. */
export class CaseFailure extends Error {
  constructor(message: string, readonly diag: Record<string, unknown> = {}) {
    super(message);
  }
}

/** Thrown by a case (or its precondition) to skip with a reason. */
export class CaseSkip extends Error {}

/** Fails the current case unless `cond` holds. */
export function check(cond: unknown, message: string, diag: Record<string, unknown> = {}): asserts cond {
  if (!cond) throw new CaseFailure(message, diag);
}

/** Fails the current case unless `actual` deep-equals `expected` (JSON comparison). */
export function checkEqual(actual: unknown, expected: unknown, message: string, diag: Record<string, unknown> = {}): void {
  if (canonical(actual) !== canonical(expected)) {
    throw new CaseFailure(message, { expected, actual, ...diag });
  }
}

/** JSON with object keys sorted, so key order does not matter in comparisons. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
      : x);
}

/** Skips the current case. */
export function skip(reason: string): never {
  throw new CaseSkip(reason);
}

/** Final outcome of one case. */
export interface Outcome {
  name: string;
  status: 'pass' | 'fail' | 'skip' | 'known-failure' | 'unexpected-pass';
  /** Skip reason, known-failure reason, or failure message. */
  reason?: string;
  diag?: Record<string, unknown>;
  ms: number;
}

/** Formats a value as an indented YAML-ish block for a TAP diagnostic. */
function yamlish(obj: Record<string, unknown>): string {
  const lines = ['  ---'];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    const text = typeof v === 'string' ? v : JSON.stringify(v, null, 2);
    if (text.includes('\n')) {
      lines.push(`  ${k}: |`);
      for (const l of text.trimEnd().split('\n')) lines.push(`    ${l}`);
    } else {
      lines.push(`  ${k}: ${text}`);
    }
  }
  lines.push('  ...');
  return lines.join('\n');
}

/** Streams TAP for outcomes in plan order and keeps the counts. */
export class TapWriter {
  passed = 0;
  failed = 0;
  skipped = 0;
  unexpectedPasses: string[] = [];
  private n = 0;

  constructor(private write: (s: string) => void = (s) => process.stdout.write(s)) {}

  /** Prints the TAP header and plan. */
  plan(count: number): void {
    this.write(`TAP version 13\n1..${count}\n`);
  }

  /** Prints one test point. */
  report(o: Outcome): void {
    const n = ++this.n;
    const t = `${(o.ms / 1000).toFixed(1)}s`;
    switch (o.status) {
      case 'pass':
        this.passed++;
        this.write(`ok ${n} - ${o.name} (${t})\n`);
        break;
      case 'skip':
        this.skipped++;
        this.write(`ok ${n} - ${o.name} # SKIP ${o.reason ?? ''}\n`);
        break;
      case 'known-failure':
        this.skipped++;
        this.write(`ok ${n} - ${o.name} # SKIP known failure: ${o.reason ?? ''}\n`);
        if (o.diag) this.write(`  # failed as expected: ${String(o.diag.message ?? '').split('\n')[0]}\n`);
        break;
      case 'unexpected-pass':
        this.passed++;
        this.unexpectedPasses.push(o.name);
        this.write(`ok ${n} - ${o.name} # unexpected pass of a known failure (${o.reason ?? ''}); remove it from the list\n`);
        break;
      case 'fail':
        this.failed++;
        this.write(`not ok ${n} - ${o.name} (${t})\n${yamlish({ message: o.reason, ...o.diag })}\n`);
        break;
    }
  }

  /** Prints the summary comment lines and the final count line. */
  finish(): void {
    if (this.unexpectedPasses.length) {
      this.write(`# unexpected passes (shrink the known-failures list): ${this.unexpectedPasses.join(', ')}\n`);
    }
    this.write(`${this.passed} passed, ${this.failed} failed, ${this.skipped} skipped\n`);
  }
}
