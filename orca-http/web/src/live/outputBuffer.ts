// The output of one execution as lines, built from stored and live chunks. Chunks are
// numbered (`seq`); the buffer keeps the next seq it expects, so a resumed subscription
// (`from_seq`) neither leaves a gap nor shows a line twice: chunks it already has are skipped.

import { parseAnsi, type Segment, type Style } from './ansi';

export type StreamName = 'stdout' | 'stderr' | string;

export interface Chunk {
  seq: number;
  stream: StreamName;
  data: string;
  encoding?: string;
}

export interface Line {
  stream: StreamName;
  segments: Segment[];
  text: string;
}

interface Partial {
  raw: string;
  style: Style;
  decoder: TextDecoder;
}

function bytesOf(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export class OutputBuffer {
  /** Completed lines, in order of arrival. */
  readonly lines: Line[] = [];
  /** The next seq expected: subscribe again with `from_seq = nextSeq`. */
  nextSeq = 0;
  /** Chunks skipped as already seen. */
  duplicates = 0;
  /** Seqs that were missing when a later chunk arrived. */
  gaps = 0;
  private partial = new Map<StreamName, Partial>();
  private styles = new Map<StreamName, Style>();

  private stream(name: StreamName): Partial {
    let p = this.partial.get(name);
    if (!p) {
      p = { raw: '', style: this.styles.get(name) ?? {}, decoder: new TextDecoder() };
      this.partial.set(name, p);
    }
    return p;
  }

  /** Add chunks (any order within the batch); returns whether anything new arrived. */
  add(chunks: readonly Chunk[]): boolean {
    let changed = false;
    const sorted = [...chunks].sort((a, b) => a.seq - b.seq);
    for (const c of sorted) {
      if (c.seq < this.nextSeq) {
        this.duplicates++;
        continue;
      }
      if (c.seq > this.nextSeq) this.gaps += c.seq - this.nextSeq;
      this.nextSeq = c.seq + 1;
      const p = this.stream(c.stream);
      const text =
        c.encoding === 'base64' ? p.decoder.decode(bytesOf(c.data), { stream: true }) : c.data;
      const parts = (p.raw + text).split('\n');
      p.raw = parts.pop() ?? '';
      for (const raw of parts) {
        const { segments, style } = parseAnsi(raw.replace(/\r$/, ''), p.style);
        p.style = style;
        this.lines.push({
          stream: c.stream,
          segments,
          text: segments.map((s) => s.text).join(''),
        });
      }
      changed = true;
    }
    return changed;
  }

  /** The lines still being written (no newline yet), one per stream. */
  pending(): Line[] {
    const out: Line[] = [];
    for (const [stream, p] of this.partial) {
      if (!p.raw) continue;
      const { segments } = parseAnsi(p.raw, p.style);
      out.push({ stream, segments, text: segments.map((s) => s.text).join('') });
    }
    return out;
  }

  /** All lines including the pending ones. */
  all(): Line[] {
    const pend = this.pending();
    return pend.length ? [...this.lines, ...pend] : this.lines;
  }

  /** The plain text (for download). */
  text(): string {
    return this.all()
      .map((l) => l.text)
      .join('\n');
  }
}
