// A table whose rows are rendered only while visible (10,000 rows stay smooth), with the ARIA
// roles of a table so assistive technology reads it as one.
import { useRef, type ReactNode } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Box } from '@mui/material';

export interface Column<T> {
  key: string;
  header: string;
  width: string;
  render: (row: T) => ReactNode;
}

export function VirtualTable<T>({
  rows,
  columns,
  rowKey,
  label,
  height = 560,
  rowHeight = 44,
  empty = 'Nothing to show.',
}: {
  rows: T[];
  columns: Column<T>[];
  rowKey: (row: T) => string;
  label: string;
  height?: number;
  rowHeight?: number;
  empty?: string;
}) {
  const parent = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parent.current,
    estimateSize: () => rowHeight,
    overscan: 12,
  });
  const template = columns.map((c) => c.width).join(' ');
  return (
    <Box
      role="table"
      aria-label={label}
      aria-rowcount={rows.length + 1}
      sx={{ border: 1, borderColor: 'divider', borderRadius: 1 }}
    >
      <Box role="rowgroup">
        <Box
          role="row"
          aria-rowindex={1}
          sx={{
            display: 'grid',
            gridTemplateColumns: template,
            px: 1,
            py: 1,
            fontWeight: 700,
            borderBottom: 1,
            borderColor: 'divider',
          }}
        >
          {columns.map((c) => (
            <Box role="columnheader" key={c.key} sx={{ px: 1 }}>
              {c.header}
            </Box>
          ))}
        </Box>
      </Box>
      <Box
        ref={parent}
        role="rowgroup"
        tabIndex={0}
        aria-label={`${label} rows`}
        sx={{
          height: Math.min(height, Math.max(rowHeight * 2, rows.length * rowHeight)),
          overflow: 'auto',
        }}
      >
        {rows.length === 0 ? (
          <Box role="row">
            <Box role="cell" sx={{ p: 2 }}>
              {empty}
            </Box>
          </Box>
        ) : (
          <Box sx={{ height: v.getTotalSize(), position: 'relative' }}>
            {v.getVirtualItems().map((item) => {
              const row = rows[item.index] as T;
              return (
                <Box
                  role="row"
                  aria-rowindex={item.index + 2}
                  key={rowKey(row)}
                  sx={{
                    position: 'absolute',
                    top: 0,
                    left: 0,
                    right: 0,
                    height: item.size,
                    transform: `translateY(${item.start}px)`,
                    display: 'grid',
                    gridTemplateColumns: template,
                    alignItems: 'center',
                    px: 1,
                    borderBottom: 1,
                    borderColor: 'divider',
                  }}
                >
                  {columns.map((c) => (
                    <Box
                      role="cell"
                      key={c.key}
                      sx={{
                        px: 1,
                        overflow: 'hidden',
                        textOverflow: 'ellipsis',
                        whiteSpace: 'nowrap',
                      }}
                    >
                      {c.render(row)}
                    </Box>
                  ))}
                </Box>
              );
            })}
          </Box>
        )}
      </Box>
    </Box>
  );
}
