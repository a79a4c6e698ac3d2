// The output of one execution, live: every line kept (no cap in the viewer), rendered only
// while visible, colours from ANSI codes, stderr told apart, follow / pause at the bottom,
// search and download. Text is rendered as text: nothing in output becomes markup.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Box, Button, Chip, TextField, Typography, useTheme } from '@mui/material';
import { OutputBuffer, type Line } from '../live/outputBuffer';
import type { Style } from '../live/ansi';
import { useLive } from '../live/useLive';

const LINE = 20;
const DARK = [
  '#2e3436',
  '#ff6b6b',
  '#8ae234',
  '#fce94f',
  '#82b4ff',
  '#e598e0',
  '#5fe3e3',
  '#d3d7cf',
  '#a0a6a0',
  '#ff8f8f',
  '#b4f27d',
  '#fff38a',
  '#a9cbff',
  '#f0b8ec',
  '#95ffff',
  '#ffffff',
];
const LIGHT = [
  '#1e1e1e',
  '#b3261e',
  '#1b6e20',
  '#6b5400',
  '#0b4fa0',
  '#8a2c87',
  '#006b6b',
  '#4a4a4a',
  '#3a3a3a',
  '#a1160f',
  '#155a19',
  '#5a4600',
  '#083f80',
  '#741f72',
  '#005757',
  '#222222',
];

function styleOf(s: Style, palette: string[]): React.CSSProperties | undefined {
  if (!s.fg && s.fg !== 0 && !s.bg && s.bg !== 0 && !s.bold && !s.italic && !s.underline)
    return undefined;
  return {
    color: s.fg !== undefined ? palette[s.fg] : undefined,
    backgroundColor: s.bg !== undefined ? palette[s.bg] : undefined,
    fontWeight: s.bold ? 700 : undefined,
    fontStyle: s.italic ? 'italic' : undefined,
    textDecoration: s.underline ? 'underline' : undefined,
  };
}

export function OutputViewer({ executionId, name }: { executionId: string; name?: string }) {
  const theme = useTheme();
  const palette = theme.palette.mode === 'dark' ? DARK : LIGHT;
  const buffer = useRef(new OutputBuffer());
  const [version, setVersion] = useState(0);
  const [ended, setEnded] = useState(false);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const parent = useRef<HTMLDivElement>(null);

  useEffect(() => {
    buffer.current = new OutputBuffer();
    setVersion((v) => v + 1);
    setEnded(false);
  }, [executionId]);

  const sub = useMemo(
    () => ({
      id: `exec-${executionId}`,
      execution_id: executionId,
      from_seq: () => buffer.current.nextSeq,
    }),
    [executionId],
  );
  const live = useLive(sub, (events) => {
    const chunks = [];
    for (const e of events) {
      if (e.type === 'output' && e.seq !== undefined && e.data !== undefined) {
        chunks.push({
          seq: e.seq,
          stream: e.stream ?? 'stdout',
          data: e.data,
          encoding: e.encoding,
        });
      } else if (e.type === 'end') setEnded(true);
    }
    if (buffer.current.add(chunks)) setVersion((v) => v + 1);
  });

  const all = useMemo(() => buffer.current.all(), [version]); // eslint-disable-line react-hooks/exhaustive-deps
  const lines: Line[] = useMemo(() => {
    if (!query) return all;
    const q = query.toLowerCase();
    return all.filter((l) => l.text.toLowerCase().includes(q));
  }, [all, query]);

  const v = useVirtualizer({
    count: lines.length,
    getScrollElement: () => parent.current,
    estimateSize: () => LINE,
    overscan: 30,
  });
  useEffect(() => {
    if (follow && lines.length) v.scrollToIndex(lines.length - 1, { align: 'end' });
  }, [follow, lines.length, v]);
  const onScroll = useCallback(() => {
    const el = parent.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < LINE * 2;
    setFollow(atBottom);
  }, []);

  const download = () => {
    const blob = new Blob([buffer.current.text()], { type: 'text/plain' });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `${name ?? executionId}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  const stateLabel = ended ? 'ended' : live === 'open' ? 'live' : live;
  return (
    <Box component="section" aria-label={`Output${name ? ` of ${name}` : ''}`}>
      <Box sx={{ display: 'flex', gap: 1, alignItems: 'center', flexWrap: 'wrap', mb: 1 }}>
        <Chip
          size="small"
          label={stateLabel}
          color={
            stateLabel === 'reconnecting'
              ? 'warning'
              : stateLabel === 'live'
                ? 'success'
                : 'default'
          }
          variant="outlined"
          data-testid="live-state"
        />
        <Typography variant="body2" component="span" data-testid="line-count">
          {all.length} lines
        </Typography>
        <TextField
          size="small"
          label="Search output"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          data-shortcut="search"
        />
        {query && (
          <Typography variant="body2" component="span" role="status">
            {lines.length} matching
          </Typography>
        )}
        <Button
          size="small"
          variant="outlined"
          onClick={() => setFollow((f) => !f)}
          aria-pressed={follow}
        >
          {follow ? 'Pause' : 'Follow'}
        </Button>
        <Button size="small" variant="outlined" onClick={download}>
          Download
        </Button>
      </Box>
      <Box
        ref={parent}
        onScroll={onScroll}
        tabIndex={0}
        role="log"
        aria-label="Output lines"
        data-testid="output"
        sx={{
          height: 420,
          overflow: 'auto',
          bgcolor: theme.palette.mode === 'dark' ? '#0b0e11' : '#fbfbfc',
          border: 1,
          borderColor: 'divider',
          borderRadius: 1,
          fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
          fontSize: 13,
        }}
      >
        <Box sx={{ height: v.getTotalSize(), position: 'relative', minWidth: 'max-content' }}>
          {v.getVirtualItems().map((item) => {
            const line = lines[item.index] as Line;
            const err = line.stream === 'stderr';
            return (
              <Box
                key={item.key}
                data-stream={line.stream}
                className="output-line"
                sx={{
                  position: 'absolute',
                  top: 0,
                  left: 0,
                  height: LINE,
                  lineHeight: `${LINE}px`,
                  transform: `translateY(${item.start}px)`,
                  whiteSpace: 'pre',
                  pl: 1,
                  pr: 2,
                  borderLeft: 3,
                  borderColor: err ? 'error.main' : 'transparent',
                  color: err ? 'error.main' : 'text.primary',
                }}
              >
                {err && <span className="visually-hidden">stderr: </span>}
                {line.segments.map((s, i) => (
                  <span key={i} style={styleOf(s.style, palette)}>
                    {s.text}
                  </span>
                ))}
              </Box>
            );
          })}
        </Box>
      </Box>
    </Box>
  );
}
