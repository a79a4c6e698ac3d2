import { describe, expect, it } from 'vitest';
import { OutputBuffer } from './outputBuffer';
import { parseAnsi } from './ansi';

const chunk = (seq: number, data: string, stream = 'stdout') => ({ seq, stream, data });

describe('OutputBuffer', () => {
  it('splits chunks into lines across chunk boundaries', () => {
    const b = new OutputBuffer();
    b.add([chunk(0, 'hel'), chunk(1, 'lo\nwor'), chunk(2, 'ld\n')]);
    expect(b.lines.map((l) => l.text)).toEqual(['hello', 'world']);
    expect(b.nextSeq).toBe(3);
  });

  it('resumes after a reconnect with no gap and no duplicate', () => {
    const b = new OutputBuffer();
    b.add([chunk(0, 'line 1\n'), chunk(1, 'line 2\n')]);
    // The socket dropped; the replay from `from_seq` overlaps what was already shown.
    const from = b.nextSeq;
    expect(from).toBe(2);
    b.add([chunk(1, 'line 2\n'), chunk(2, 'line 3\n'), chunk(3, 'line 4\n')]);
    expect(b.lines.map((l) => l.text)).toEqual(['line 1', 'line 2', 'line 3', 'line 4']);
    expect(b.duplicates).toBe(1);
    expect(b.gaps).toBe(0);
  });

  it('orders a batch by seq and counts gaps', () => {
    const b = new OutputBuffer();
    b.add([chunk(1, 'b\n'), chunk(0, 'a\n'), chunk(3, 'd\n')]);
    expect(b.lines.map((l) => l.text)).toEqual(['a', 'b', 'd']);
    expect(b.gaps).toBe(1);
  });

  it('keeps stdout and stderr apart, each with its own partial line', () => {
    const b = new OutputBuffer();
    b.add([chunk(0, 'out-'), chunk(1, 'err\n', 'stderr'), chunk(2, 'done\n')]);
    expect(b.lines.map((l) => [l.stream, l.text])).toEqual([
      ['stderr', 'err'],
      ['stdout', 'out-done'],
    ]);
  });

  it('shows the line being written', () => {
    const b = new OutputBuffer();
    b.add([chunk(0, 'a\npartial')]);
    expect(b.all().map((l) => l.text)).toEqual(['a', 'partial']);
    expect(b.text()).toBe('a\npartial');
  });

  it('decodes base64 chunks, also when a character is split between chunks', () => {
    const b = new OutputBuffer();
    const bytes = new TextEncoder().encode('é\n');
    const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
    b.add([
      { seq: 0, stream: 'stdout', data: b64(bytes.slice(0, 1)), encoding: 'base64' },
      { seq: 1, stream: 'stdout', data: b64(bytes.slice(1)), encoding: 'base64' },
    ]);
    expect(b.lines[0]?.text).toBe('é');
  });

  it('carries colours across lines of a stream', () => {
    const b = new OutputBuffer();
    b.add([chunk(0, '\x1b[31mred\nstill red\x1b[0m plain\n')]);
    expect(b.lines[1]?.segments[0]).toEqual({ text: 'still red', style: { fg: 1 } });
    expect(b.lines[1]?.segments[1]).toEqual({ text: ' plain', style: {} });
  });
});

describe('parseAnsi', () => {
  it('turns SGR codes into styles', () => {
    const { segments } = parseAnsi('a\x1b[1;32mb\x1b[39mc\x1b[0md');
    expect(segments).toEqual([
      { text: 'a', style: {} },
      { text: 'b', style: { bold: true, fg: 2 } },
      { text: 'c', style: { bold: true } },
      { text: 'd', style: {} },
    ]);
  });

  it('drops other escapes and control characters, keeps markup as text', () => {
    const canary = '<img src=x onerror=alert(1)>';
    const { segments } = parseAnsi(`\x1b]0;title\x07\x1b[2K${canary}\x07\x1b[?25l`);
    expect(segments.map((s) => s.text).join('')).toBe(canary);
  });

  it('keeps bright and 256-colour indexes below 16', () => {
    expect(parseAnsi('\x1b[91mx').segments[0]?.style).toEqual({ fg: 9 });
    expect(parseAnsi('\x1b[38;5;4mx').segments[0]?.style).toEqual({ fg: 4 });
    expect(parseAnsi('\x1b[38;2;1;2;3mx').segments[0]?.style).toEqual({});
  });
});
