import { useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import { Alert, Box, Button, Paper, TextField, Typography } from '@mui/material';
import { login, HttpError } from '../auth/session';

export function SignIn({ onSignedIn }: { onSignedIn: (next: string) => void }) {
  const [params] = useSearchParams();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await login(username, password);
      const next = params.get('next');
      onSignedIn(next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
    } catch (err) {
      setError(
        err instanceof HttpError
          ? err.status === 401
            ? 'Wrong user name or password.'
            : err.message
          : 'The server cannot be reached.',
      );
    } finally {
      setBusy(false);
    }
  };
  document.title = 'Sign in · Orca';
  return (
    <Box component="main" sx={{ display: 'grid', placeItems: 'center', minHeight: '100vh', p: 2 }}>
      <Paper
        component="form"
        onSubmit={submit}
        sx={{ p: 4, width: '100%', maxWidth: 380 }}
        noValidate
      >
        <Typography variant="h5" component="h1" gutterBottom>
          Sign in to Orca
        </Typography>
        {error && (
          <Alert severity="error" role="alert" sx={{ mb: 2 }}>
            {error}
          </Alert>
        )}
        <TextField
          label="User name"
          name="username"
          autoComplete="username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          fullWidth
          margin="normal"
          required
          autoFocus
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          fullWidth
          margin="normal"
          required
        />
        <Button
          type="submit"
          variant="contained"
          fullWidth
          sx={{ mt: 2 }}
          disabled={busy || !username || !password}
        >
          Sign in
        </Button>
      </Paper>
    </Box>
  );
}
