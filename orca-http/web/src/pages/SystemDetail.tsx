import { useState, type FormEvent } from 'react';
import { useNavigate, useParams } from 'react-router-dom';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import {
  messageOf,
  useApproveHostKeyMutation,
  useDeleteSystemMutation,
  useGetSystemQuery,
  useHostKeysQuery,
  useProbeSystemMutation,
  useUpdateSystemMutation,
  type System,
} from '../api';
import { can, ErrorAlert, Page, StatusChip, when } from '../components/common';
import { useMe } from '../App';

export default function SystemDetail() {
  const { name = '' } = useParams();
  const me = useMe();
  const navigate = useNavigate();
  const q = useGetSystemQuery(name);
  const keys = useHostKeysQuery(name);
  const [probe, probeState] = useProbeSystemMutation();
  const [del, delState] = useDeleteSystemMutation();
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const s = q.data;
  const admin = can.manageSystems(me?.role);
  return (
    <Page
      title={`System ${name}`}
      actions={
        s && (
          <Box sx={{ display: 'flex', gap: 1 }}>
            {can.run(me?.role) && (
              <Button
                variant="outlined"
                onClick={() => void probe(name)}
                disabled={probeState.isLoading}
              >
                Probe
              </Button>
            )}
            {admin && (
              <Button variant="outlined" onClick={() => setEditing(true)}>
                Edit
              </Button>
            )}
            {admin && (
              <Button variant="outlined" color="error" onClick={() => setConfirmDelete(true)}>
                Delete
              </Button>
            )}
          </Box>
        )
      }
    >
      <ErrorAlert error={q.error ?? probeState.error ?? delState.error} />
      {probeState.data && (
        <Alert
          severity={probeState.data.status === 'healthy' ? 'success' : 'warning'}
          sx={{ mb: 2 }}
        >
          Probe: {probeState.data.status}
          {probeState.data.latency_ms != null && ` in ${probeState.data.latency_ms} ms`}
          {probeState.data.reason && ` — ${probeState.data.reason}`}
        </Alert>
      )}
      {s && (
        <Paper variant="outlined" sx={{ p: 2, mb: 3 }}>
          <Box
            component="dl"
            sx={{
              display: 'grid',
              gridTemplateColumns: 'max-content 1fr',
              columnGap: 3,
              rowGap: 1,
              m: 0,
            }}
          >
            <dt>Host</dt>
            <dd style={{ margin: 0 }}>
              {s.hostname}:{s.port}
            </dd>
            <dt>Type</dt>
            <dd style={{ margin: 0 }}>{s.type}</dd>
            <dt>User</dt>
            <dd style={{ margin: 0 }}>{s.username || '—'}</dd>
            <dt>Credential</dt>
            <dd style={{ margin: 0 }}>{s.has_credential ? 'set' : 'not set'}</dd>
            <dt>Tags</dt>
            <dd style={{ margin: 0 }}>{s.tags.join(', ') || '—'}</dd>
            <dt>Active</dt>
            <dd style={{ margin: 0 }}>{s.active ? 'yes' : 'no'}</dd>
            <dt>Health</dt>
            <dd style={{ margin: 0 }}>
              <StatusChip status={s.health.status} /> {s.health.reason}{' '}
              {s.health.checked_at && `(checked ${when(s.health.checked_at)})`}
            </dd>
            <dt>Unknown host keys</dt>
            <dd style={{ margin: 0 }}>{s.host_key_policy}</dd>
          </Box>
        </Paper>
      )}
      {s && s.type !== 'local' && (
        <HostKeys name={name} admin={admin} keys={keys.data?.items ?? []} error={keys.error} />
      )}
      {editing && s && <EditSystem system={s} onClose={() => setEditing(false)} />}
      <Dialog
        open={confirmDelete}
        onClose={() => setConfirmDelete(false)}
        aria-labelledby="del-title"
      >
        <DialogTitle id="del-title">Delete {name}?</DialogTitle>
        <DialogContent>
          <DialogContentText>Jobs that ran on it are kept.</DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirmDelete(false)}>Cancel</Button>
          <Button
            color="error"
            variant="contained"
            onClick={async () => {
              const r = await del(name);
              if (!('error' in r)) navigate('/systems');
              setConfirmDelete(false);
            }}
          >
            Delete
          </Button>
        </DialogActions>
      </Dialog>
    </Page>
  );
}

function HostKeys({
  name,
  admin,
  keys,
  error,
}: {
  name: string;
  admin: boolean;
  keys: { id: string; algorithm: string; fingerprint: string; created_at: string }[];
  error: unknown;
}) {
  const [approve, state] = useApproveHostKeyMutation();
  const [algorithm, setAlgorithm] = useState('ssh-ed25519');
  const [fingerprint, setFingerprint] = useState('');
  const fpError =
    fingerprint && !fingerprint.startsWith('SHA256:') ? 'A fingerprint starts with SHA256:' : '';
  return (
    <Box component="section" aria-labelledby="keys-title">
      <Typography id="keys-title" variant="h6" component="h2" gutterBottom>
        Approved host keys
      </Typography>
      <ErrorAlert error={error ?? state.error} />
      <Table size="small" aria-labelledby="keys-title">
        <TableHead>
          <TableRow>
            <TableCell>Algorithm</TableCell>
            <TableCell>Fingerprint</TableCell>
            <TableCell>Approved</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {keys.map((k) => (
            <TableRow key={k.id}>
              <TableCell>{k.algorithm}</TableCell>
              <TableCell>
                <code>{k.fingerprint}</code>
              </TableCell>
              <TableCell>{when(k.created_at)}</TableCell>
            </TableRow>
          ))}
          {keys.length === 0 && (
            <TableRow>
              <TableCell colSpan={3}>
                No key approved yet. A probe shows the key the system offers.
              </TableCell>
            </TableRow>
          )}
        </TableBody>
      </Table>
      {admin && (
        <Box
          component="form"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void approve({ name, body: { algorithm, fingerprint } }).then(() => setFingerprint(''));
          }}
          sx={{ display: 'flex', gap: 2, mt: 2, flexWrap: 'wrap', alignItems: 'flex-start' }}
        >
          <TextField
            label="Algorithm"
            size="small"
            value={algorithm}
            onChange={(e) => setAlgorithm(e.target.value)}
          />
          <TextField
            label="Fingerprint to approve"
            size="small"
            value={fingerprint}
            onChange={(e) => setFingerprint(e.target.value)}
            error={!!fpError}
            helperText={fpError || ' '}
            sx={{ minWidth: 360 }}
          />
          <Button type="submit" variant="outlined" disabled={!fingerprint || !!fpError}>
            Approve key
          </Button>
        </Box>
      )}
    </Box>
  );
}

function EditSystem({ system, onClose }: { system: System; onClose: () => void }) {
  const [update, state] = useUpdateSystemMutation();
  const [f, setF] = useState({
    hostname: system.hostname,
    port: String(system.port),
    username: system.username,
    password: '',
    tags: system.tags.join(', '),
  });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) =>
    setF({ ...f, [k]: e.target.value });
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await update({
      name: system.name,
      body: {
        hostname: system.type === 'local' ? undefined : f.hostname,
        port: system.type === 'local' ? undefined : Number(f.port),
        username: f.username || undefined,
        credential: f.password ? { password: f.password } : undefined,
        tags: f.tags
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      },
    });
    if (!('error' in r)) onClose();
  };
  return (
    <Dialog open onClose={onClose} aria-labelledby="edit-title" fullWidth maxWidth="sm">
      <form onSubmit={submit}>
        <DialogTitle id="edit-title">Edit {system.name}</DialogTitle>
        <DialogContent>
          {state.error && <Alert severity="error">{messageOf(state.error)}</Alert>}
          <TextField
            label="Host name"
            value={f.hostname}
            onChange={set('hostname')}
            fullWidth
            margin="dense"
            disabled={system.type === 'local'}
          />
          <TextField
            label="Port"
            value={f.port}
            onChange={set('port')}
            fullWidth
            margin="dense"
            disabled={system.type === 'local'}
          />
          <TextField
            label="User name"
            value={f.username}
            onChange={set('username')}
            fullWidth
            margin="dense"
          />
          <TextField
            label={`New password (credential ${system.has_credential ? 'set' : 'not set'})`}
            type="password"
            autoComplete="new-password"
            value={f.password}
            onChange={set('password')}
            fullWidth
            margin="dense"
            helperText="Leave empty to keep the current credential. It is never shown."
          />
          <TextField
            label="Tags (comma separated)"
            value={f.tags}
            onChange={set('tags')}
            fullWidth
            margin="dense"
          />
        </DialogContent>
        <DialogActions>
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="contained" disabled={state.isLoading}>
            Save
          </Button>
        </DialogActions>
      </form>
    </Dialog>
  );
}
