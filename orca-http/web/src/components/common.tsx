import { useEffect, type ReactNode } from 'react';
import { Alert, Box, Chip, Typography, type ChipProps } from '@mui/material';
import type { Role } from '../api';
import { messageOf } from '../api';

export function Page({
  title,
  actions,
  children,
}: {
  title: string;
  actions?: ReactNode;
  children: ReactNode;
}) {
  useEffect(() => {
    document.title = `${title} · Orca`;
  }, [title]);
  return (
    <Box component="section" aria-labelledby="page-title">
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 2, mb: 2, flexWrap: 'wrap' }}>
        <Typography id="page-title" variant="h5" component="h1" sx={{ flexGrow: 1 }}>
          {title}
        </Typography>
        {actions}
      </Box>
      {children}
    </Box>
  );
}

const STATUS_COLOR: Record<string, ChipProps['color']> = {
  completed: 'success',
  healthy: 'success',
  success: 'success',
  running: 'info',
  pending: 'default',
  unknown: 'default',
  failed: 'error',
  unhealthy: 'error',
  failure: 'error',
  denied: 'warning',
  timeout: 'warning',
  lost: 'warning',
  cancelled: 'default',
};

export function StatusChip({ status }: { status: string }) {
  return (
    <Chip
      size="small"
      variant="outlined"
      color={STATUS_COLOR[status] ?? 'default'}
      label={status}
      sx={{ fontWeight: 600 }}
    />
  );
}

export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <Alert severity="error" sx={{ my: 1 }}>
      {messageOf(error)}
    </Alert>
  );
}

export function when(ts?: string | null): string {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleString();
}

export function duration(from?: string | null, to?: string | null): string {
  if (!from) return '—';
  const ms = (to ? new Date(to) : new Date()).getTime() - new Date(from).getTime();
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export const can = {
  run: (r?: Role) => r === 'admin' || r === 'operator',
  manageSystems: (r?: Role) => r === 'admin',
  admin: (r?: Role) => r === 'admin',
};
