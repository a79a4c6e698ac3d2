import { Link as RouterLink, useSearchParams } from 'react-router-dom';
import {
  Box,
  Button,
  Link,
  MenuItem,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
} from '@mui/material';
import { useListJobsQuery, type Job } from '../api';
import { ErrorAlert, Page, StatusChip, when } from '../components/common';

const LIMIT = 50;

export default function History() {
  const [params, setParams] = useSearchParams();
  const status = params.get('status') ?? '';
  const by = params.get('by') ?? '';
  const offset = Number(params.get('offset') ?? 0) || 0;
  const q = useListJobsQuery({
    status: (status || undefined) as Job['status'] | undefined,
    created_by: by || undefined,
    offset,
    limit: LIMIT,
  });
  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    if (k !== 'offset') p.delete('offset');
    setParams(p);
  };
  return (
    <Page title="History">
      <Box role="search" sx={{ display: 'flex', gap: 2, mb: 2, flexWrap: 'wrap' }}>
        <TextField
          select
          label="Status"
          size="small"
          value={status}
          onChange={(e) => set('status', e.target.value)}
          sx={{ minWidth: 140 }}
        >
          <MenuItem value="">Any</MenuItem>
          {['pending', 'running', 'completed', 'failed', 'cancelled'].map((s) => (
            <MenuItem key={s} value={s}>
              {s}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          label="User"
          size="small"
          value={by}
          onChange={(e) => set('by', e.target.value)}
          data-shortcut="search"
        />
      </Box>
      <ErrorAlert error={q.error} />
      <Table size="small" aria-label="Jobs">
        <TableHead>
          <TableRow>
            <TableCell>Job</TableCell>
            <TableCell>Status</TableCell>
            <TableCell>By</TableCell>
            <TableCell>Systems</TableCell>
            <TableCell>Created</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {(q.data?.items ?? []).map((j) => (
            <TableRow key={j.id}>
              <TableCell>
                <Link component={RouterLink} to={`/jobs/${j.id}`}>
                  {j.name}
                </Link>
              </TableCell>
              <TableCell>
                <StatusChip status={j.status} />
              </TableCell>
              <TableCell>{j.created_by}</TableCell>
              <TableCell>
                {[
                  ...(j.targets.systems ?? []),
                  ...(j.targets.tags ?? []).map((t) => `tag:${t}`),
                ].join(', ')}
              </TableCell>
              <TableCell>{when(j.created_at)}</TableCell>
            </TableRow>
          ))}
          {q.data && q.data.items.length === 0 && (
            <TableRow>
              <TableCell colSpan={5}>No jobs match.</TableCell>
            </TableRow>
          )}
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
