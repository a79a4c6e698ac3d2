import { Fragment, useState } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  Box,
  Button,
  Collapse,
  IconButton,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
} from '@mui/material';
import { useListAuditQuery } from '../api';
import { ErrorAlert, Page, StatusChip, when } from '../components/common';

const LIMIT = 100;

export default function Audit() {
  const [params, setParams] = useSearchParams();
  const get = (k: string) => params.get(k) ?? '';
  const offset = Number(get('offset')) || 0;
  const toIso = (v: string) => (v ? new Date(v).toISOString() : undefined);
  const q = useListAuditQuery({
    actor: get('actor') || undefined,
    action: get('action') || undefined,
    resource_type: get('resource') || undefined,
    since: toIso(get('since')),
    until: toIso(get('until')),
    offset,
    limit: LIMIT,
  });
  const [open, setOpen] = useState<string | null>(null);
  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    if (k !== 'offset') p.delete('offset');
    setParams(p, { replace: true });
  };
  return (
    <Page title="Audit log">
      <Box role="search" sx={{ display: 'flex', gap: 2, mb: 2, flexWrap: 'wrap' }}>
        <TextField
          label="User"
          size="small"
          value={get('actor')}
          onChange={(e) => set('actor', e.target.value)}
          data-shortcut="search"
        />
        <TextField
          label="Action"
          size="small"
          value={get('action')}
          onChange={(e) => set('action', e.target.value)}
        />
        <TextField
          label="Resource type"
          size="small"
          value={get('resource')}
          onChange={(e) => set('resource', e.target.value)}
        />
        <TextField
          label="Since"
          type="datetime-local"
          size="small"
          value={get('since')}
          onChange={(e) => set('since', e.target.value)}
          InputLabelProps={{ shrink: true }}
        />
        <TextField
          label="Until"
          type="datetime-local"
          size="small"
          value={get('until')}
          onChange={(e) => set('until', e.target.value)}
          InputLabelProps={{ shrink: true }}
        />
      </Box>
      <ErrorAlert error={q.error} />
      <Table size="small" aria-label="Audit records">
        <TableHead>
          <TableRow>
            <TableCell>
              <span className="visually-hidden">Details</span>
            </TableCell>
            <TableCell>When</TableCell>
            <TableCell>User</TableCell>
            <TableCell>Action</TableCell>
            <TableCell>Resource</TableCell>
            <TableCell>Outcome</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {(q.data?.items ?? []).map((r) => (
            <Fragment key={r.id}>
              <TableRow>
                <TableCell padding="checkbox">
                  <IconButton
                    size="small"
                    aria-expanded={open === r.id}
                    aria-label={`${open === r.id ? 'Hide' : 'Show'} details of ${r.action}`}
                    onClick={() => setOpen(open === r.id ? null : r.id)}
                  >
                    {open === r.id ? '−' : '+'}
                  </IconButton>
                </TableCell>
                <TableCell>{when(r.at)}</TableCell>
                <TableCell>{r.actor}</TableCell>
                <TableCell>{r.action}</TableCell>
                <TableCell>
                  {r.resource_type}
                  {r.resource_id ? ` ${r.resource_id}` : ''}
                </TableCell>
                <TableCell>
                  <StatusChip status={r.outcome} />
                </TableCell>
              </TableRow>
              <TableRow>
                <TableCell
                  colSpan={6}
                  sx={{ py: 0, borderBottom: open === r.id ? undefined : 'none' }}
                >
                  <Collapse in={open === r.id} unmountOnExit>
                    <Box
                      component="pre"
                      sx={{ m: 1, fontSize: 12, whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}
                    >
                      {JSON.stringify(r.details, null, 2)}
                    </Box>
                  </Collapse>
                </TableCell>
              </TableRow>
            </Fragment>
          ))}
        </TableBody>
      </Table>
      <Box sx={{ display: 'flex', gap: 2, mt: 1 }}>
        <Button
          disabled={offset === 0}
          onClick={() => set('offset', String(Math.max(0, offset - LIMIT)))}
        >
          Newer
        </Button>
        <Button
          disabled={q.data?.next_offset == null}
          onClick={() => set('offset', String(q.data?.next_offset ?? 0))}
        >
          Older
        </Button>
      </Box>
    </Page>
  );
}
