import { OpCode } from './ops';

const MAGIC = 0x4c504853; // "SHPL"

/**
 * Builds the flat record list the C helper interprets. Each record is an opcode and string
 * arguments; numbers travel as decimal (or hex, where the helper says so) strings.
 */
export class PlanWriter {
  private readonly records: { op: OpCode; args: string[] }[] = [];

  /** Append one record. */
  add(op: OpCode, ...args: (string | number | bigint)[]): this {
    this.records.push({ op, args: args.map(String) });
    return this;
  }

  /** Whether a record with this opcode was added. */
  has(op: OpCode): boolean {
    return this.records.some((r) => r.op === op);
  }

  /** Opcodes in order (for tests). */
  ops(): OpCode[] {
    return this.records.map((r) => r.op);
  }

  /** Arguments of every record with this opcode (for tests). */
  argsOf(op: OpCode): string[][] {
    return this.records.filter((r) => r.op === op).map((r) => r.args);
  }

  /** Serialize: u32 total length, then magic, count and the records (little-endian). */
  encode(): Buffer {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(8);
    head.writeUInt32LE(MAGIC, 0);
    head.writeUInt32LE(this.records.length, 4);
    parts.push(head);
    for (const r of this.records) {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(r.op, 0);
      h.writeUInt32LE(r.args.length, 4);
      parts.push(h);
      for (const a of r.args) {
        const b = Buffer.from(a, 'utf8');
        const l = Buffer.alloc(4);
        l.writeUInt32LE(b.length, 0);
        parts.push(l, b);
      }
    }
    const body = Buffer.concat(parts);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length, 0);
    return Buffer.concat([len, body]);
  }
}
