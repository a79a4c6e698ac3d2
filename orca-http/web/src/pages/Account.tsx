import { useState, type FormEvent } from 'react';
import {
  Alert,
  Box,
  Button,
  MenuItem,
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
  useChangePasswordMutation,
  useCreateTokenMutation,
  useListTokensQuery,
  useRevokeTokenMutation,
  type Role,
} from '../api';
import { ErrorAlert, Page, when } from '../components/common';
import { useMe } from '../App';
import { logout } from '../auth/session';

export default function Account() {
  const me = useMe();
  return (
    <Page title="Account">
      <Typography sx={{ mb: 2 }}>
        Signed in as <strong>{me?.username}</strong> ({me?.role}).
      </Typography>
      <ChangePassword />
      <Tokens />
    </Page>
  );
}

function ChangePassword() {
  const [change, state] = useChangePasswordMutation();
  const [f, setF] = useState({ current: '', next: '', again: '' });
  const mismatch = f.again && f.next !== f.again ? 'The passwords differ.' : '';
  const short = f.next && f.next.length < 12 ? 'At least 12 characters.' : '';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const r = await change({ current_password: f.current, new_password: f.next });
    // Changing the password ends every session, this one too.
    if (!('error' in r)) await logout();
  };
  return (
    <Paper
      variant="outlined"
      component="form"
      onSubmit={submit}
      sx={{ p: 2, mb: 3, maxWidth: 480 }}
      aria-labelledby="pw-title"
    >
      <Typography id="pw-title" variant="h6" component="h2" gutterBottom>
        Change password
      </Typography>
      {state.error && <Alert severity="error">{messageOf(state.error)}</Alert>}
      <TextField
        type="password"
        autoComplete="current-password"
        label="Current password"
        value={f.current}
        onChange={(e) => setF({ ...f, current: e.target.value })}
        fullWidth
        margin="dense"
      />
      <TextField
        type="password"
        autoComplete="new-password"
        label="New password"
        value={f.next}
        onChange={(e) => setF({ ...f, next: e.target.value })}
        fullWidth
        margin="dense"
        error={!!short}
        helperText={short || ' '}
      />
      <TextField
        type="password"
        autoComplete="new-password"
        label="New password again"
        value={f.again}
        onChange={(e) => setF({ ...f, again: e.target.value })}
        fullWidth
        margin="dense"
        error={!!mismatch}
        helperText={mismatch || ' '}
      />
      <Button
        type="submit"
        variant="contained"
        disabled={!f.current || !f.next || !!mismatch || !!short || f.next !== f.again}
      >
        Change password
      </Button>
    </Paper>
  );
}

function Tokens() {
  const tokens = useListTokensQuery();
  const [create, createState] = useCreateTokenMutation();
  const [revoke, revokeState] = useRevokeTokenMutation();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('viewer');
  return (
    <Box component="section" aria-labelledby="tokens-title">
      <Typography id="tokens-title" variant="h6" component="h2" gutterBottom>
        API tokens
      </Typography>
      <ErrorAlert error={tokens.error ?? createState.error ?? revokeState.error} />
      {createState.data && (
        <Alert severity="success" sx={{ mb: 2 }}>
          Token {createState.data.name}: <code>{createState.data.token}</code> — copy it now, it is
          not shown again.
        </Alert>
      )}
      <Box
        component="form"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void create({ name, role }).then(() => setName(''));
        }}
        sx={{ display: 'flex', gap: 2, mb: 2, flexWrap: 'wrap' }}
      >
        <TextField
          size="small"
          label="Token name"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <TextField
          select
          size="small"
          label="Highest role"
          value={role}
          onChange={(e) => setRole(e.target.value as Role)}
          sx={{ minWidth: 130 }}
        >
          <MenuItem value="viewer">viewer</MenuItem>
          <MenuItem value="operator">operator</MenuItem>
          <MenuItem value="admin">admin</MenuItem>
        </TextField>
        <Button type="submit" variant="outlined" disabled={!name}>
          Create token
        </Button>
      </Box>
      <Table size="small" aria-labelledby="tokens-title">
        <TableHead>
          <TableRow>
            <TableCell>Name</TableCell>
            <TableCell>Role</TableCell>
            <TableCell>Created</TableCell>
            <TableCell>Expires</TableCell>
            <TableCell>State</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {(tokens.data?.items ?? []).map((t) => (
            <TableRow key={t.id}>
              <TableCell>{t.name}</TableCell>
              <TableCell>{t.role ?? '—'}</TableCell>
              <TableCell>{when(t.created_at)}</TableCell>
              <TableCell>{when(t.expires_at)}</TableCell>
              <TableCell>
                {t.revoked_at ? (
                  'revoked'
                ) : (
                  <Button size="small" color="error" onClick={() => void revoke(t.id)}>
                    Revoke {t.name}
                  </Button>
                )}
              </TableCell>
            </TableRow>
          ))}
          {tokens.data?.items.length === 0 && (
            <TableRow>
              <TableCell colSpan={5}>No API tokens.</TableCell>
            </TableRow>
          )}
        </TableBody>
      </Table>
    </Box>
  );
}
