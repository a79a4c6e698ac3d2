import { createContext, lazy, Suspense, useCallback, useContext, useEffect, useState } from 'react';
import { Navigate, NavLink, Route, Routes, useLocation, useNavigate } from 'react-router-dom';
import {
  AppBar,
  Box,
  Button,
  CircularProgress,
  Dialog,
  DialogContent,
  DialogTitle,
  Drawer,
  List,
  ListItem,
  ListItemButton,
  ListItemText,
  Toolbar,
  Typography,
  useMediaQuery,
  useTheme,
} from '@mui/material';
import { api, useWhoamiQuery, type Me } from './api';
import { logout, onAuthChange, refresh } from './auth/session';
import { useThemeMode } from './theme';
import { store } from './store';
import { can } from './components/common';
import { SignIn } from './pages/SignIn';
import { Dashboard } from './pages/Dashboard';

const Systems = lazy(() => import('./pages/Systems'));
const SystemDetail = lazy(() => import('./pages/SystemDetail'));
const Run = lazy(() => import('./pages/Run'));
const JobPage = lazy(() => import('./pages/Job'));
const ExecutionPage = lazy(() => import('./pages/Execution'));
const History = lazy(() => import('./pages/History'));
const Audit = lazy(() => import('./pages/Audit'));
const Admin = lazy(() => import('./pages/Admin'));
const Account = lazy(() => import('./pages/Account'));

const MeCtx = createContext<Me | undefined>(undefined);
export const useMe = () => useContext(MeCtx);

const AnnounceCtx = createContext<(msg: string) => void>(() => {});
/** Say something to screen readers (a polite live region). */
export const useAnnounce = () => useContext(AnnounceCtx);

type AuthState = 'checking' | 'in' | 'out';

export function App() {
  const [auth, setAuth] = useState<AuthState>('checking');
  const location = useLocation();
  const navigate = useNavigate();
  useEffect(() => {
    const off = onAuthChange((signedIn) => {
      setAuth(signedIn ? 'in' : 'out');
      if (!signedIn) store.dispatch(api.util.resetApiState());
    });
    // A reload: the access token is gone; the refresh cookie brings the session back.
    void refresh().then((ok) => setAuth(ok ? 'in' : 'out'));
    return () => {
      off();
    };
  }, []);

  if (auth === 'checking') {
    return (
      <Box sx={{ display: 'grid', placeItems: 'center', height: '100vh' }}>
        <CircularProgress aria-label="Loading" />
      </Box>
    );
  }
  if (auth === 'out') {
    if (location.pathname !== '/signin') {
      const next = location.pathname + location.search;
      return <Navigate to={`/signin?next=${encodeURIComponent(next)}`} replace />;
    }
    return <SignIn onSignedIn={(next) => navigate(next, { replace: true })} />;
  }
  return <Shell />;
}

const NAV: { to: string; label: string; show: (m?: Me) => boolean }[] = [
  { to: '/', label: 'Dashboard', show: () => true },
  { to: '/run', label: 'Run', show: (m) => can.run(m?.role) },
  { to: '/systems', label: 'Systems', show: () => true },
  { to: '/jobs', label: 'History', show: () => true },
  { to: '/audit', label: 'Audit', show: (m) => can.admin(m?.role) },
  { to: '/admin', label: 'Admin', show: (m) => can.admin(m?.role) },
  { to: '/account', label: 'Account', show: () => true },
];

const DRAWER = 200;

function Shell() {
  const { data: me, isLoading } = useWhoamiQuery();
  const theme = useTheme();
  const wide = useMediaQuery(theme.breakpoints.up('md'));
  const [open, setOpen] = useState(false);
  const [help, setHelp] = useState(false);
  const [message, setMessage] = useState('');
  const { mode, toggle } = useThemeMode();
  const navigate = useNavigate();
  const location = useLocation();
  const announce = useCallback((m: string) => setMessage(m), []);

  useEffect(() => setOpen(false), [location.pathname]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      if (e.key === '/') {
        const search = document.querySelector<HTMLElement>(
          '[data-shortcut="search"] input, [data-shortcut="search"]',
        );
        if (search) {
          e.preventDefault();
          search.focus();
        }
      } else if (e.key === '?') {
        setHelp(true);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const nav = (
    <nav aria-label="Main">
      <List>
        {NAV.filter((n) => n.show(me)).map((n) => (
          <ListItem key={n.to} disablePadding>
            <ListItemButton
              component={NavLink}
              to={n.to}
              end={n.to === '/'}
              sx={{ '&.active': { bgcolor: 'action.selected', fontWeight: 700 } }}
            >
              <ListItemText primary={n.label} />
            </ListItemButton>
          </ListItem>
        ))}
      </List>
    </nav>
  );

  return (
    <MeCtx.Provider value={me}>
      <AnnounceCtx.Provider value={announce}>
        <Box sx={{ display: 'flex', minHeight: '100vh' }}>
          <a className="skip-link" href="#main">
            Skip to content
          </a>
          <AppBar position="fixed" sx={{ zIndex: (t) => t.zIndex.drawer + 1 }}>
            <Toolbar sx={{ gap: 1 }}>
              {!wide && (
                <Button color="inherit" onClick={() => setOpen(true)} aria-label="Open navigation">
                  Menu
                </Button>
              )}
              <Typography variant="h6" component="div" sx={{ flexGrow: 1 }}>
                Orca
              </Typography>
              <Button
                color="inherit"
                onClick={toggle}
                aria-label={`Switch to ${mode === 'dark' ? 'light' : 'dark'} theme`}
              >
                {mode === 'dark' ? 'Light theme' : 'Dark theme'}
              </Button>
              <Button color="inherit" onClick={() => setHelp(true)} aria-label="Keyboard shortcuts">
                ?
              </Button>
              {me && (
                <Typography
                  variant="body2"
                  component="span"
                  sx={{ display: { xs: 'none', sm: 'inline' } }}
                >
                  {me.username} ({me.role})
                </Typography>
              )}
              <Button
                color="inherit"
                onClick={() => {
                  void logout().then(() => navigate('/signin'));
                }}
              >
                Sign out
              </Button>
            </Toolbar>
          </AppBar>
          <Drawer
            variant={wide ? 'permanent' : 'temporary'}
            open={wide || open}
            onClose={() => setOpen(false)}
            sx={{ width: DRAWER, flexShrink: 0, '& .MuiDrawer-paper': { width: DRAWER } }}
          >
            <Toolbar />
            {nav}
          </Drawer>
          <Box
            component="main"
            id="main"
            tabIndex={-1}
            sx={{ flexGrow: 1, p: { xs: 1.5, sm: 3 }, minWidth: 0 }}
          >
            <Toolbar />
            {isLoading ? (
              <CircularProgress aria-label="Loading" />
            ) : (
              <Suspense fallback={<CircularProgress aria-label="Loading" />}>
                <Routes>
                  <Route path="/" element={<Dashboard />} />
                  <Route path="/signin" element={<Navigate to="/" replace />} />
                  <Route path="/systems" element={<Systems />} />
                  <Route path="/systems/:name" element={<SystemDetail />} />
                  <Route path="/run" element={can.run(me?.role) ? <Run /> : <Refused />} />
                  <Route path="/jobs" element={<History />} />
                  <Route path="/jobs/:id" element={<JobPage />} />
                  <Route path="/executions/:id" element={<ExecutionPage />} />
                  <Route path="/audit" element={can.admin(me?.role) ? <Audit /> : <Refused />} />
                  <Route path="/admin" element={can.admin(me?.role) ? <Admin /> : <Refused />} />
                  <Route path="/account" element={<Account />} />
                  <Route path="*" element={<NotFound />} />
                </Routes>
              </Suspense>
            )}
          </Box>
          <Box role="status" aria-live="polite" className="visually-hidden">
            {message}
          </Box>
          <Dialog open={help} onClose={() => setHelp(false)} aria-labelledby="shortcuts-title">
            <DialogTitle id="shortcuts-title">Keyboard shortcuts</DialogTitle>
            <DialogContent>
              <Box
                component="dl"
                sx={{ m: 0, display: 'grid', gridTemplateColumns: 'auto 1fr', gap: 1 }}
              >
                <dt>
                  <kbd>/</kbd>
                </dt>
                <dd style={{ margin: 0 }}>Focus the search field of the page</dd>
                <dt>
                  <kbd>?</kbd>
                </dt>
                <dd style={{ margin: 0 }}>Show this list</dd>
                <dt>
                  <kbd>Tab</kbd>
                </dt>
                <dd style={{ margin: 0 }}>
                  Move between controls (the first stop skips to the content)
                </dd>
              </Box>
            </DialogContent>
          </Dialog>
        </Box>
      </AnnounceCtx.Provider>
    </MeCtx.Provider>
  );
}

function Refused() {
  return (
    <Box role="alert">
      <Typography variant="h5" component="h1">
        Not allowed
      </Typography>
      <Typography>Your role does not allow this page.</Typography>
    </Box>
  );
}

function NotFound() {
  return (
    <Box>
      <Typography variant="h5" component="h1">
        Not found
      </Typography>
      <Typography>There is no page here.</Typography>
    </Box>
  );
}
