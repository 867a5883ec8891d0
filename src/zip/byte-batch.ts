/** Collects small header buffers so they leave as one chunk (bounded: at most ~`limit` bytes held). */
export class ByteBatch {
  readonly #limit: number;
  #parts: Buffer[] = [];
  #bytes = 0;

  constructor(limit = 64 * 1024) { this.#limit = limit; }

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#parts.push(b);
    this.#bytes += b.length;
  }

  get full(): boolean { return this.#bytes >= this.#limit; }

  /** The collected bytes as one buffer (undefined when empty); the batch is empty afterwards. */
  take(): Buffer | undefined {
    if (this.#bytes === 0) return undefined;
    const out = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#bytes);
    this.#parts = [];
    this.#bytes = 0;
    return out;
  }
}
