// ANSI SGR colours to styled segments. Output is only ever rendered as text (React text
// nodes): escape sequences become styles or are dropped, never markup.

export interface Style {
  fg?: number;
  bg?: number;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

export interface Segment {
  text: string;
  style: Style;
}

/** Every escape sequence: CSI (`ESC [ … final`), OSC (`ESC ] … BEL|ST`), or a 2-byte escape. */
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
// eslint-disable-next-line no-control-regex
const OTHER_CONTROLS = /[\x00-\x08\x0b-\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

function applySgr(style: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(';').map((p) => Number(p) || 0);
  let s: Style = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] ?? 0;
    if (c === 0) s = {};
    else if (c === 1) s.bold = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) s.bold = false;
    else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c >= 30 && c <= 37) s.fg = c - 30;
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
    else if (c === 39) delete s.fg;
    else if (c >= 40 && c <= 47) s.bg = c - 40;
    else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
    else if (c === 49) delete s.bg;
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      const n = codes[i + 2] ?? 0;
      if (n < 16) s[c === 38 ? 'fg' : 'bg'] = n;
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      i += 4; // truecolour: not rendered
    }
  }
  return s;
}

/**
 * Split `text` into styled segments, starting from `style`; returns the segments and the style
 * in effect at the end (for the next line of the same stream).
 */
export function parseAnsi(text: string, style: Style = {}): { segments: Segment[]; style: Style } {
  const segments: Segment[] = [];
  let at = 0;
  let cur = style;
  const push = (t: string) => {
    const clean = t.replace(OTHER_CONTROLS, '');
    if (clean) segments.push({ text: clean, style: cur });
  };
  for (const m of text.matchAll(ESCAPE)) {
    push(text.slice(at, m.index));
    if (m[2] === 'm') cur = applySgr(cur, m[1] ?? '');
    at = (m.index ?? 0) + m[0].length;
  }
  push(text.slice(at));
  return { segments, style: cur };
}
