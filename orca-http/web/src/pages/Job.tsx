import { useMemo, useState } from 'react';
import { Link as RouterLink, useParams } from 'react-router-dom';
import { Box, Button, Chip, Link, Paper, Stack, Typography } from '@mui/material';
import {
  api,
  useCancelExecutionMutation,
  useCancelJobMutation,
  useGetJobQuery,
  useJobExecutionsQuery,
  useListSystemsQuery,
  useRetryJobMutation,
  type Execution,
} from '../api';
import { can, duration, ErrorAlert, Page, StatusChip, when } from '../components/common';
import { VirtualTable, type Column } from '../components/VirtualTable';
import { OutputViewer } from '../components/OutputViewer';
import { useLive } from '../live/useLive';
import { useAnnounce, useMe } from '../App';
import { store } from '../store';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timeout', 'lost']);

/** Failures split as an operator reads them: never ran (reach / authenticate / verify) vs ran and failed. */
export function failureKind(
  e: Pick<Execution, 'status' | 'exit_code' | 'error'>,
): 'unreached' | 'ran' | null {
  if (e.status === 'timeout') return 'ran';
  if (e.status !== 'failed' && e.status !== 'lost') return null;
  return e.exit_code == null ? 'unreached' : 'ran';
}

export default function JobPage() {
  const { id = '' } = useParams();
  const me = useMe();
  const announce = useAnnounce();
  const job = useGetJobQuery(id);
  const execs = useJobExecutionsQuery({ id });
  const systems = useListSystemsQuery({ limit: 1000 });
  const [cancelJob, cancelState] = useCancelJobMutation();
  const [retryJob, retryState] = useRetryJobMutation();
  const [cancelExec] = useCancelExecutionMutation();
  const [filter, setFilter] = useState<string>('');
  const [selected, setSelected] = useState<string | null>(null);
  const names = useMemo(
    () => new Map((systems.data?.items ?? []).map((s) => [s.id, s.name])),
    [systems.data],
  );

  const sub = useMemo(() => ({ id: `job-${id}`, job_id: id, offsets: () => ({}) }), [id]);
  const live = useLive(sub, (events) => {
    let refetch = false;
    for (const e of events) {
      if (e.type === 'job' && e.status) announce(`Job ${e.status}`);
      if (e.type === 'job' || e.type === 'execution' || e.type === 'end') refetch = true;
    }
    if (refetch) store.dispatch(api.util.invalidateTags(['Job']));
  });

  const rows = execs.data?.items ?? [];
  const shown = rows.filter((e) => {
    if (!filter) return true;
    if (filter === 'unreached' || filter === 'ran') return failureKind(e) === filter;
    return e.status === filter;
  });
  const current = selected ?? (rows.length === 1 ? (rows[0]?.id ?? null) : null);
  const j = job.data;
  const counts = j?.counts;
  const unreached = rows.filter((e) => failureKind(e) === 'unreached').length;
  const ranFailed = rows.filter((e) => failureKind(e) === 'ran').length;
  const operator = can.run(me?.role);

  const columns: Column<Execution>[] = [
    {
      key: 'system',
      header: 'System',
      width: '2fr',
      render: (e) => (
        <Link
          component="button"
          type="button"
          onClick={() => setSelected(e.id)}
          aria-current={e.id === current ? 'true' : undefined}
        >
          {names.get(e.system_id) ?? e.system_id}
        </Link>
      ),
    },
    {
      key: 'status',
      header: 'Status',
      width: '1fr',
      render: (e) => <StatusChip status={e.status} />,
    },
    {
      key: 'exit',
      header: 'Exit',
      width: '0.6fr',
      render: (e) => (e.exit_code ?? e.signal ?? '—') as string,
    },
    {
      key: 'dur',
      header: 'Duration',
      width: '1fr',
      render: (e) => duration(e.started_at, e.completed_at),
    },
    { key: 'error', header: 'Error', width: '2fr', render: (e) => e.error ?? '' },
    {
      key: 'act',
      header: 'Actions',
      width: '1.4fr',
      render: (e) => (
        <Stack direction="row" spacing={1}>
          <Link component={RouterLink} to={`/executions/${e.id}`}>
            Open
          </Link>
          {operator && !TERMINAL.has(e.status) && (
            <Link component="button" type="button" onClick={() => void cancelExec(e.id)}>
              Cancel
            </Link>
          )}
        </Stack>
      ),
    },
  ];

  return (
    <Page
      title={j ? `Job ${j.name}` : 'Job'}
      actions={
        j &&
        operator && (
          <Stack direction="row" spacing={1}>
            {!TERMINAL.has(j.status) && (
              <Button
                variant="outlined"
                color="error"
                onClick={() => void cancelJob(id)}
                disabled={cancelState.isLoading}
              >
                Cancel job
              </Button>
            )}
            {TERMINAL.has(j.status) && (counts?.failed || counts?.timeout || counts?.lost) ? (
              <Button
                variant="outlined"
                onClick={() => void retryJob(id)}
                disabled={retryState.isLoading}
              >
                Retry failed
              </Button>
            ) : null}
          </Stack>
        )
      }
    >
      <ErrorAlert error={job.error ?? execs.error ?? cancelState.error ?? retryState.error} />
      {j && (
        <Paper variant="outlined" sx={{ p: 2, mb: 2 }}>
          <Stack
            direction="row"
            spacing={2}
            sx={{ flexWrap: 'wrap', alignItems: 'center' }}
            useFlexGap
          >
            <StatusChip status={j.status} />
            <Typography variant="body2">by {j.created_by}</Typography>
            <Typography variant="body2">{when(j.created_at)}</Typography>
            <Chip size="small" variant="outlined" label={live === 'open' ? 'live' : live} />
          </Stack>
          <Box
            component="pre"
            sx={{ m: 0, mt: 1, whiteSpace: 'pre-wrap', fontFamily: 'ui-monospace, monospace' }}
            aria-label="Command"
          >
            {j.command}
          </Box>
        </Paper>
      )}
      {counts && (
        <Stack
          direction="row"
          spacing={1}
          sx={{ mb: 2, flexWrap: 'wrap' }}
          useFlexGap
          role="group"
          aria-label="Filter executions"
        >
          {(
            [
              ['', `All ${rows.length}`],
              ['running', `Running ${counts.running}`],
              ['pending', `Pending ${counts.pending}`],
              ['completed', `Completed ${counts.completed}`],
              ['unreached', `Could not reach ${unreached}`],
              ['ran', `Ran and failed ${ranFailed}`],
              ['cancelled', `Cancelled ${counts.cancelled}`],
            ] as const
          ).map(([k, label]) => (
            <Chip
              key={k}
              label={label}
              onClick={() => setFilter(k)}
              color={filter === k ? 'primary' : 'default'}
              variant={filter === k ? 'filled' : 'outlined'}
              aria-pressed={filter === k}
            />
          ))}
        </Stack>
      )}
      <VirtualTable
        rows={shown}
        columns={columns}
        rowKey={(e) => e.id}
        label="Executions"
        height={320}
      />
      {current && (
        <Box sx={{ mt: 3 }}>
          <Typography variant="h6" component="h2" gutterBottom>
            Output of{' '}
            {names.get(rows.find((e) => e.id === current)?.system_id ?? '') ?? 'execution'}
          </Typography>
          <OutputViewer
            executionId={current}
            name={names.get(rows.find((e) => e.id === current)?.system_id ?? '')}
          />
        </Box>
      )}
    </Page>
  );
}
