import { Link as RouterLink } from 'react-router-dom';
import {
  Box,
  Card,
  CardContent,
  Link,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { useListJobsQuery, useListSystemsQuery } from '../api';
import { ErrorAlert, Page, StatusChip, when } from '../components/common';

function Stat({ label, value }: { label: string; value: number | string }) {
  return (
    <Card variant="outlined">
      <CardContent>
        <Typography variant="body2" color="text.secondary">
          {label}
        </Typography>
        <Typography variant="h4" component="p">
          {value}
        </Typography>
      </CardContent>
    </Card>
  );
}

export function Dashboard() {
  const jobs = useListJobsQuery({ limit: 200 }, { pollingInterval: 5000 });
  const systems = useListSystemsQuery({ limit: 1000 }, { pollingInterval: 15000 });
  const items = jobs.data?.items ?? [];
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  const running = items.filter((j) => j.status === 'running').length;
  const queued = items.filter((j) => j.status === 'pending').length;
  const failed = items.filter(
    (j) => j.status === 'failed' && new Date(j.created_at).getTime() > dayAgo,
  ).length;
  const health = { healthy: 0, unhealthy: 0, unknown: 0 } as Record<string, number>;
  for (const s of systems.data?.items ?? [])
    health[s.health.status] = (health[s.health.status] ?? 0) + 1;
  return (
    <Page title="Dashboard">
      <ErrorAlert error={jobs.error ?? systems.error} />
      <Box
        sx={{
          display: 'grid',
          gap: 2,
          gridTemplateColumns: 'repeat(auto-fill, minmax(160px, 1fr))',
          mb: 3,
        }}
      >
        <Stat label="Running jobs" value={running} />
        <Stat label="Queued jobs" value={queued} />
        <Stat label="Failed (24 h)" value={failed} />
        <Stat label="Healthy systems" value={health.healthy ?? 0} />
        <Stat label="Unhealthy systems" value={health.unhealthy ?? 0} />
        <Stat label="Unknown health" value={health.unknown ?? 0} />
      </Box>
      <Typography variant="h6" component="h2" gutterBottom>
        Recent jobs
      </Typography>
      <Table size="small" aria-label="Recent jobs">
        <TableHead>
          <TableRow>
            <TableCell>Job</TableCell>
            <TableCell>Status</TableCell>
            <TableCell>By</TableCell>
            <TableCell>Created</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {items.slice(0, 10).map((j) => (
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
              <TableCell>{when(j.created_at)}</TableCell>
            </TableRow>
          ))}
          {items.length === 0 && (
            <TableRow>
              <TableCell colSpan={4}>No jobs yet.</TableCell>
            </TableRow>
          )}
        </TableBody>
      </Table>
    </Page>
  );
}
