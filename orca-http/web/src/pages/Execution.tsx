import { Link as RouterLink, useParams } from 'react-router-dom';
import { Alert, Button, Link, Paper, Stack, Typography } from '@mui/material';
import { useCancelExecutionMutation, useGetExecutionQuery, useGetSystemQuery } from '../api';
import { can, duration, ErrorAlert, Page, StatusChip } from '../components/common';
import { OutputViewer } from '../components/OutputViewer';
import { useMe } from '../App';

export default function ExecutionPage() {
  const { id = '' } = useParams();
  const me = useMe();
  const q = useGetExecutionQuery(id, { pollingInterval: 3000 });
  const e = q.data;
  const system = useGetSystemQuery(e?.system_id ?? '', { skip: !e });
  const [cancel, cancelState] = useCancelExecutionMutation();
  const running = e && (e.status === 'running' || e.status === 'pending');
  return (
    <Page
      title={`Execution on ${system.data?.name ?? '…'}`}
      actions={
        running && can.run(me?.role) ? (
          <Button variant="outlined" color="error" onClick={() => void cancel(id)}>
            Cancel
          </Button>
        ) : null
      }
    >
      <ErrorAlert error={q.error ?? cancelState.error} />
      {e && (
        <Paper variant="outlined" sx={{ p: 2, mb: 2 }}>
          <Stack
            direction="row"
            spacing={2}
            sx={{ flexWrap: 'wrap', alignItems: 'center' }}
            useFlexGap
          >
            <StatusChip status={e.status} />
            <Typography variant="body2">exit {e.exit_code ?? '—'}</Typography>
            <Typography variant="body2">attempt {e.attempt}</Typography>
            <Typography variant="body2">{duration(e.started_at, e.completed_at)}</Typography>
            <Link component={RouterLink} to={`/jobs/${e.job_id}`}>
              Job
            </Link>
          </Stack>
          {e.error && <Typography sx={{ mt: 1 }}>{e.error}</Typography>}
        </Paper>
      )}
      {e && e.output_dropped > 0 && (
        <Alert severity="info" sx={{ mb: 2 }}>
          The store capped this output: {e.output_dropped} bytes were not kept.
        </Alert>
      )}
      <OutputViewer executionId={id} name={system.data?.name} />
    </Page>
  );
}
