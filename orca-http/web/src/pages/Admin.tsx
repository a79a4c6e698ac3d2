import { useState, type FormEvent } from 'react';
import {
  Alert,
  Box,
  Button,
  MenuItem,
  Paper,
  Switch,
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
  useCreateUserMutation,
  useGetGrantsQuery,
  useListUsersQuery,
  useResetPasswordMutation,
  useSetGrantsMutation,
  useUpdateUserMutation,
  type Role,
  type User,
} from '../api';
import { ErrorAlert, Page, when } from '../components/common';

export default function Admin() {
  const users = useListUsersQuery();
  const [update, updateState] = useUpdateUserMutation();
  const [selected, setSelected] = useState<User | null>(null);
  return (
    <Page title="Users and grants">
      <ErrorAlert error={users.error ?? updateState.error} />
      <CreateUser />
      <Table size="small" aria-label="Users">
        <TableHead>
          <TableRow>
            <TableCell>User</TableCell>
            <TableCell>Role</TableCell>
            <TableCell>Active</TableCell>
            <TableCell>Created</TableCell>
            <TableCell>Grants</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {(users.data?.items ?? []).map((u) => (
            <TableRow key={u.id} selected={selected?.id === u.id}>
              <TableCell>{u.username}</TableCell>
              <TableCell>
                <TextField
                  select
                  size="small"
                  value={u.role}
                  onChange={(e) =>
                    void update({ id: u.id, body: { role: e.target.value as Role } })
                  }
                  inputProps={{ 'aria-label': `Role of ${u.username}` }}
                >
                  <MenuItem value="viewer">viewer</MenuItem>
                  <MenuItem value="operator">operator</MenuItem>
                  <MenuItem value="admin">admin</MenuItem>
                </TextField>
              </TableCell>
              <TableCell>
                <Switch
                  checked={u.active}
                  onChange={(e) => void update({ id: u.id, body: { active: e.target.checked } })}
                  inputProps={{ 'aria-label': `${u.username} is active` }}
                />
              </TableCell>
              <TableCell>{when(u.created_at)}</TableCell>
              <TableCell>
                <Button size="small" onClick={() => setSelected(u)}>
                  Grants and password
                </Button>
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {selected && <UserDetail user={selected} key={selected.id} />}
    </Page>
  );
}

function CreateUser() {
  const [create, state] = useCreateUserMutation();
  const [f, setF] = useState({ username: '', role: 'viewer', password: '' });
  const pwError = f.password && f.password.length < 12 ? 'At least 12 characters.' : '';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await create({ username: f.username, role: f.role as Role, password: f.password });
    if (!('error' in r)) setF({ username: '', role: 'viewer', password: '' });
  };
  return (
    <Paper
      variant="outlined"
      component="form"
      onSubmit={submit}
      sx={{ p: 2, mb: 2 }}
      aria-labelledby="new-user"
    >
      <Typography id="new-user" variant="h6" component="h2" gutterBottom>
        New user
      </Typography>
      {state.error && <Alert severity="error">{messageOf(state.error)}</Alert>}
      <Box sx={{ display: 'flex', gap: 2, flexWrap: 'wrap', alignItems: 'flex-start' }}>
        <TextField
          size="small"
          label="User name"
          value={f.username}
          onChange={(e) => setF({ ...f, username: e.target.value })}
        />
        <TextField
          select
          size="small"
          label="Role"
          value={f.role}
          onChange={(e) => setF({ ...f, role: e.target.value })}
          sx={{ minWidth: 120 }}
        >
          <MenuItem value="viewer">viewer</MenuItem>
          <MenuItem value="operator">operator</MenuItem>
          <MenuItem value="admin">admin</MenuItem>
        </TextField>
        <TextField
          size="small"
          type="password"
          autoComplete="new-password"
          label="Initial password"
          value={f.password}
          onChange={(e) => setF({ ...f, password: e.target.value })}
          error={!!pwError}
          helperText={pwError || ' '}
        />
        <Button
          type="submit"
          variant="contained"
          disabled={!f.username || !f.password || !!pwError}
        >
          Create
        </Button>
      </Box>
    </Paper>
  );
}

function UserDetail({ user }: { user: User }) {
  const grants = useGetGrantsQuery(user.id);
  const [setGrants, grantState] = useSetGrantsMutation();
  const [reset, resetState] = useResetPasswordMutation();
  const [tags, setTags] = useState<string | null>(null);
  const [pw, setPw] = useState('');
  const current = (grants.data?.grants ?? [])
    .map((g) => (g.kind === 'all' ? '*' : `${g.kind}:${g.value ?? ''}`))
    .join(', ');
  const value = tags ?? current;
  return (
    <Paper
      variant="outlined"
      sx={{ p: 2, mt: 2 }}
      component="section"
      aria-labelledby="user-detail"
    >
      <Typography id="user-detail" variant="h6" component="h2" gutterBottom>
        {user.username}
      </Typography>
      <ErrorAlert error={grants.error ?? grantState.error ?? resetState.error} />
      {resetState.isSuccess && <Alert severity="success">Password reset.</Alert>}
      <Box
        component="form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          const list = value
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
            .map((s) => {
              if (s === '*') return { kind: 'all' as const };
              const [kind, ...rest] = s.split(':');
              return { kind: kind as 'tag', value: rest.join(':') };
            });
          void setGrants({ id: user.id, body: { grants: list } });
        }}
        sx={{ display: 'flex', gap: 2, flexWrap: 'wrap', mb: 2 }}
      >
        <TextField
          size="small"
          label="Grants (tag:web, system:db1, * for all)"
          value={value}
          onChange={(e) => setTags(e.target.value)}
          sx={{ minWidth: 360 }}
        />
        <Button type="submit" variant="outlined">
          Save grants
        </Button>
      </Box>
      <Box
        component="form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void reset({ id: user.id, password: pw }).then(() => setPw(''));
        }}
        sx={{ display: 'flex', gap: 2, flexWrap: 'wrap' }}
      >
        <TextField
          size="small"
          type="password"
          autoComplete="new-password"
          label="New password"
          value={pw}
          onChange={(e) => setPw(e.target.value)}
        />
        <Button type="submit" variant="outlined" disabled={pw.length < 12}>
          Reset password
        </Button>
      </Box>
    </Paper>
  );
}
