import { useEffect, useState, type FormEvent } from 'react';
import { Link as RouterLink, useSearchParams } from 'react-router-dom';
import {
  Alert,
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Link,
  MenuItem,
  TextField,
} from '@mui/material';
import { messageOf, useCreateSystemMutation, useListSystemsQuery, type System } from '../api';
import { can, ErrorAlert, Page, StatusChip } from '../components/common';
import { VirtualTable, type Column } from '../components/VirtualTable';
import { useMe } from '../App';

const PAGE = 500;

const columns: Column<System>[] = [
  {
    key: 'name',
    header: 'Name',
    width: '2fr',
    render: (s) => (
      <Link component={RouterLink} to={`/systems/${encodeURIComponent(s.name)}`}>
        {s.name}
      </Link>
    ),
  },
  {
    key: 'host',
    header: 'Host',
    width: '2fr',
    render: (s) => (s.type === 'local' ? '—' : `${s.hostname}:${s.port}`),
  },
  { key: 'type', header: 'Type', width: '1fr', render: (s) => s.type },
  {
    key: 'health',
    header: 'Health',
    width: '1fr',
    render: (s) => <StatusChip status={s.health.status} />,
  },
  { key: 'tags', header: 'Tags', width: '2fr', render: (s) => s.tags.join(', ') || '—' },
];

export default function Systems() {
  const me = useMe();
  const [params, setParams] = useSearchParams();
  const name = params.get('name') ?? '';
  const tag = params.get('tag') ?? '';
  const type = params.get('type') ?? '';
  const health = params.get('health') ?? '';
  const [search, setSearch] = useState(name);
  const [offset, setOffset] = useState(0);
  const [rows, setRows] = useState<System[]>([]);
  const [adding, setAdding] = useState(false);
  const q = useListSystemsQuery({
    name: name || undefined,
    tag: tag ? [tag] : undefined,
    type: (type || undefined) as System['type'] | undefined,
    health: (health || undefined) as System['health']['status'] | undefined,
    offset,
    limit: PAGE,
  });
  useEffect(() => setOffset(0), [name, tag, type, health]);
  useEffect(() => {
    if (!q.data) return;
    const items = q.data.items;
    setRows((prev) => (q.data?.offset ? [...prev.slice(0, q.data.offset), ...items] : items));
  }, [q.data]);
  useEffect(() => {
    const t = setTimeout(() => {
      if (search !== name) {
        const p = new URLSearchParams(params);
        if (search) p.set('name', search);
        else p.delete('name');
        setParams(p, { replace: true });
      }
    }, 250);
    return () => clearTimeout(t);
  }, [search, name, params, setParams]);
  const setFilter = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
  };
  return (
    <Page
      title="Systems"
      actions={
        can.manageSystems(me?.role) && (
          <Button variant="contained" onClick={() => setAdding(true)}>
            Add system
          </Button>
        )
      }
    >
      <Box role="search" sx={{ display: 'flex', gap: 2, flexWrap: 'wrap', mb: 2 }}>
        <TextField
          label="Search by name"
          size="small"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          data-shortcut="search"
        />
        <TextField
          label="Tag"
          size="small"
          value={tag}
          onChange={(e) => setFilter('tag', e.target.value)}
        />
        <TextField
          select
          label="Type"
          size="small"
          value={type}
          onChange={(e) => setFilter('type', e.target.value)}
          sx={{ minWidth: 120 }}
        >
          <MenuItem value="">Any</MenuItem>
          <MenuItem value="linux">linux</MenuItem>
          <MenuItem value="windows">windows</MenuItem>
          <MenuItem value="local">local</MenuItem>
        </TextField>
        <TextField
          select
          label="Health"
          size="small"
          value={health}
          onChange={(e) => setFilter('health', e.target.value)}
          sx={{ minWidth: 130 }}
        >
          <MenuItem value="">Any</MenuItem>
          <MenuItem value="healthy">healthy</MenuItem>
          <MenuItem value="unhealthy">unhealthy</MenuItem>
          <MenuItem value="unknown">unknown</MenuItem>
        </TextField>
      </Box>
      <ErrorAlert error={q.error} />
      <VirtualTable
        rows={rows}
        columns={columns}
        rowKey={(s) => s.id}
        label="Systems"
        empty={q.isFetching ? 'Loading…' : 'No systems match.'}
      />
      <Box sx={{ mt: 1, display: 'flex', gap: 2, alignItems: 'center' }}>
        <span>{rows.length} shown</span>
        {q.data?.next_offset != null && (
          <Button onClick={() => setOffset(q.data?.next_offset ?? 0)} disabled={q.isFetching}>
            Load more
          </Button>
        )}
      </Box>
      {adding && <AddSystem onClose={() => setAdding(false)} />}
    </Page>
  );
}

function AddSystem({ onClose }: { onClose: () => void }) {
  const [create, state] = useCreateSystemMutation();
  const [f, setF] = useState({
    name: '',
    hostname: '',
    port: '22',
    username: '',
    password: '',
    tags: '',
    type: 'linux',
    policy: 'tofu',
  });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) =>
    setF({ ...f, [k]: e.target.value });
  const nameError =
    f.name && !/^[A-Za-z0-9._-]+$/.test(f.name) ? 'Letters, digits, ".", "_" and "-" only.' : '';
  const portError =
    f.port && !(Number(f.port) >= 1 && Number(f.port) <= 65535) ? 'A port is 1 to 65535.' : '';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await create({
      name: f.name,
      hostname: f.hostname || undefined,
      port: Number(f.port) || undefined,
      username: f.username || undefined,
      type: f.type as System['type'],
      host_key_policy: f.policy as System['host_key_policy'],
      credential: f.password ? { password: f.password } : undefined,
      tags: f.tags
        ? f.tags
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
        : undefined,
    });
    if (!('error' in r)) onClose();
  };
  return (
    <Dialog open onClose={onClose} aria-labelledby="add-system-title" fullWidth maxWidth="sm">
      <form onSubmit={submit}>
        <DialogTitle id="add-system-title">Add system</DialogTitle>
        <DialogContent>
          {state.error && <Alert severity="error">{messageOf(state.error)}</Alert>}
          <TextField
            label="Name"
            value={f.name}
            onChange={set('name')}
            required
            fullWidth
            margin="dense"
            error={!!nameError}
            helperText={nameError || ' '}
          />
          <TextField
            select
            label="Type"
            value={f.type}
            onChange={set('type')}
            fullWidth
            margin="dense"
          >
            <MenuItem value="linux">linux (SSH)</MenuItem>
            <MenuItem value="windows">windows (WinRM)</MenuItem>
          </TextField>
          <TextField
            label="Host name"
            value={f.hostname}
            onChange={set('hostname')}
            fullWidth
            margin="dense"
          />
          <TextField
            label="Port"
            value={f.port}
            onChange={set('port')}
            fullWidth
            margin="dense"
            error={!!portError}
            helperText={portError || ' '}
            inputMode="numeric"
          />
          <TextField
            label="User name"
            value={f.username}
            onChange={set('username')}
            fullWidth
            margin="dense"
          />
          <TextField
            label="Password (write-only)"
            type="password"
            autoComplete="new-password"
            value={f.password}
            onChange={set('password')}
            fullWidth
            margin="dense"
          />
          <TextField
            label="Tags (comma separated)"
            value={f.tags}
            onChange={set('tags')}
            fullWidth
            margin="dense"
          />
          <TextField
            select
            label="Unknown host keys"
            value={f.policy}
            onChange={set('policy')}
            fullWidth
            margin="dense"
          >
            <MenuItem value="strict">strict: only approved keys</MenuItem>
            <MenuItem value="tofu">tofu: pin on first contact</MenuItem>
            <MenuItem value="insecure">insecure: accept any</MenuItem>
          </TextField>
        </DialogContent>
        <DialogActions>
          <Button onClick={onClose}>Cancel</Button>
          <Button
            type="submit"
            variant="contained"
            disabled={!f.name || !!nameError || !!portError || state.isLoading}
          >
            Add
          </Button>
        </DialogActions>
      </form>
    </Dialog>
  );
}
