import { useMemo, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router-dom';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  MenuItem,
  TextField,
  Typography,
} from '@mui/material';
import { messageOf, useListSystemsQuery, useSubmitJobMutation, type Schemas } from '../api';
import { Page } from '../components/common';

/** Above this many systems the console asks for the count to be typed back. */
export const BLAST_RADIUS = 25;

export function splitList(s: string): string[] {
  return [
    ...new Set(
      s
        .split(/[\s,]+/)
        .map((x) => x.trim())
        .filter(Boolean),
    ),
  ];
}

export function validateRun(f: {
  command: string;
  timeout: string;
  concurrency: string;
  retries: string;
}) {
  const errors: Record<string, string> = {};
  if (!f.command.trim()) errors.command = 'Enter a command.';
  const int = (v: string, min: number, max: number) =>
    v === '' || (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max);
  if (!int(f.timeout, 1, 2592000)) errors.timeout = 'Seconds, 1 to 2592000.';
  if (!int(f.concurrency, 1, 100000)) errors.concurrency = 'A number from 1.';
  if (!int(f.retries, 0, 100)) errors.retries = '0 to 100.';
  return errors;
}

export default function Run() {
  const navigate = useNavigate();
  const [submit, state] = useSubmitJobMutation();
  const [f, setF] = useState({
    systems: 'local',
    tags: '',
    command: '',
    shell: 'default',
    timeout: '',
    concurrency: '',
    retries: '0',
  });
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState('');
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) =>
    setF({ ...f, [k]: e.target.value });
  const names = useMemo(() => splitList(f.systems), [f.systems]);
  const tags = useMemo(() => splitList(f.tags), [f.tags]);
  const byTag = useListSystemsQuery(
    { tag: tags, active: true, limit: 1000 },
    { skip: tags.length === 0 },
  );
  const tagged = byTag.data?.items ?? [];
  const count = new Set([...names, ...tagged.map((s) => s.name)]).size;
  const more = byTag.data?.next_offset != null;
  const errors = validateRun(f);
  const touched = f.command !== '';

  const go = async () => {
    const body: Schemas['JobRequest'] = {
      command: f.command,
      targets: { systems: names, tags },
      options: {
        shell: f.shell as NonNullable<Schemas['JobOptions']['shell']>,
        timeout_seconds: f.timeout ? Number(f.timeout) : undefined,
        concurrency: f.concurrency ? Number(f.concurrency) : undefined,
        retries: Number(f.retries) || 0,
      },
    };
    const r = await submit(body);
    if ('data' in r && r.data) navigate(`/jobs/${r.data.job.id}`);
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (Object.keys(errors).length) return;
    if (count > BLAST_RADIUS || more) {
      setTyped('');
      setConfirming(true);
    } else void go();
  };
  return (
    <Page title="Run a command">
      <Box component="form" onSubmit={onSubmit} noValidate sx={{ maxWidth: 760 }}>
        {state.error && <Alert severity="error">{messageOf(state.error)}</Alert>}
        <TextField
          label="Systems (names, comma or space separated)"
          value={f.systems}
          onChange={set('systems')}
          fullWidth
          margin="normal"
        />
        <TextField
          label="Tags (any of them)"
          value={f.tags}
          onChange={set('tags')}
          fullWidth
          margin="normal"
        />
        <Typography role="status" aria-live="polite" sx={{ my: 1 }}>
          The selection resolves to <strong>{more ? `more than ${count}` : count}</strong> system
          {count === 1 ? '' : 's'}.
        </Typography>
        <TextField
          label="Command"
          value={f.command}
          onChange={set('command')}
          fullWidth
          margin="normal"
          multiline
          minRows={3}
          required
          error={touched && !!errors.command}
          helperText={(touched && errors.command) || ' '}
          inputProps={{ style: { fontFamily: 'ui-monospace, monospace' }, spellCheck: false }}
        />
        <Box
          sx={{
            display: 'grid',
            gap: 2,
            gridTemplateColumns: 'repeat(auto-fill, minmax(160px, 1fr))',
          }}
        >
          <TextField select label="Shell" value={f.shell} onChange={set('shell')}>
            <MenuItem value="default">default</MenuItem>
            <MenuItem value="sh">sh</MenuItem>
            <MenuItem value="bash">bash</MenuItem>
            <MenuItem value="cmd">cmd</MenuItem>
            <MenuItem value="powershell">PowerShell</MenuItem>
          </TextField>
          <TextField
            label="Timeout (s)"
            value={f.timeout}
            onChange={set('timeout')}
            error={!!errors.timeout}
            helperText={errors.timeout ?? ' '}
            inputMode="numeric"
          />
          <TextField
            label="Concurrency"
            value={f.concurrency}
            onChange={set('concurrency')}
            error={!!errors.concurrency}
            helperText={errors.concurrency ?? ' '}
            inputMode="numeric"
          />
          <TextField
            label="Retries"
            value={f.retries}
            onChange={set('retries')}
            error={!!errors.retries}
            helperText={errors.retries ?? ' '}
            inputMode="numeric"
          />
        </Box>
        <Button
          type="submit"
          variant="contained"
          sx={{ mt: 2 }}
          disabled={count === 0 || !f.command.trim() || state.isLoading}
        >
          Run
        </Button>
      </Box>
      <Dialog open={confirming} onClose={() => setConfirming(false)} aria-labelledby="blast-title">
        <DialogTitle id="blast-title">
          Run on {more ? `more than ${count}` : count} systems?
        </DialogTitle>
        <DialogContent>
          <DialogContentText>
            This runs on many systems. Type the number of systems ({count}) to confirm.
          </DialogContentText>
          <TextField
            label="Number of systems"
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            autoFocus
            margin="normal"
          />
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>Cancel</Button>
          <Button
            variant="contained"
            color="warning"
            disabled={typed !== String(count)}
            onClick={() => {
              setConfirming(false);
              void go();
            }}
          >
            Run on {count}
          </Button>
        </DialogActions>
      </Dialog>
    </Page>
  );
}
