import { OpCode } from './ops';
import { ShoalError } from '../errors';

const MAGIC = 0x32504853; // "SHP2"

/**
 * Builds the flat record list the C helper interprets. Each record is an opcode and string
 * arguments; numbers travel as decimal (or hex, where the helper says so) strings.
 */
export class PlanWriter {
  private readonly records: { op: OpCode; args: string[] }[] = [];

  /** Append one record. */
  add(op: OpCode, ...args: (string | number | bigint)[]): this {
    const strs = args.map(String);
    for (const a of strs) {
      if (a.includes('\0')) throw new ShoalError('INVALID_CONFIG', `config.json: a string holds a NUL character: ${JSON.stringify(a.slice(0, 80))}`);
    }
    this.records.push({ op, args: strs });
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

  /**
   * Serialize (format in native/helper/helper.h): u32 total length, magic, count, the record
   * headers, then every argument NUL-terminated. The strings go in as one joined string, one
   * write: a write per argument was a millisecond of a cold start.
   */
  encode(): Buffer {
    const strs: string[] = [];
    for (const r of this.records) for (const a of r.args) strs.push(a, '\0');
    const text = strs.join('');
    const head = 12 + 8 * this.records.length;
    const buf = Buffer.allocUnsafe(head + Buffer.byteLength(text));
    const v = new DataView(buf.buffer, buf.byteOffset, head);
    v.setUint32(0, buf.length - 4, true);
    v.setUint32(4, MAGIC, true);
    v.setUint32(8, this.records.length, true);
    let o = 12;
    for (const r of this.records) {
      v.setUint32(o, r.op, true);
      v.setUint32(o + 4, r.args.length, true);
      o += 8;
    }
    buf.write(text, head, 'utf8');
    return buf;
  }
}
