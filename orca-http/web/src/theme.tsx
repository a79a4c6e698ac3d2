// The one theme of the console: light and dark palettes with WCAG 2.1 AA contrast, following
// the system preference until the user picks one (remembered in localStorage: a preference,
// never a credential).
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { createTheme, CssBaseline, ThemeProvider, useMediaQuery } from '@mui/material';

export type Mode = 'light' | 'dark';
type Choice = Mode | 'system';
const KEY = 'orca-theme';

function makeTheme(mode: Mode) {
  const light = mode === 'light';
  return createTheme({
    palette: {
      mode,
      primary: { main: light ? '#0b5cad' : '#8cc4ff' },
      secondary: { main: light ? '#6a3fa0' : '#d0b4ff' },
      success: { main: light ? '#1b6e20' : '#7fdc86' },
      warning: { main: light ? '#8a4b00' : '#ffc266' },
      error: { main: light ? '#b3261e' : '#ffb4ab' },
      info: { main: light ? '#005f8a' : '#7fd0ff' },
      background: light
        ? { default: '#f6f7f9', paper: '#ffffff' }
        : { default: '#101418', paper: '#171c22' },
      text: light
        ? { primary: '#14181d', secondary: '#454c55' }
        : { primary: '#eef1f5', secondary: '#b9c1cb' },
    },
    typography: {
      fontFamily:
        'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    },
    shape: { borderRadius: 6 },
    components: {
      MuiButtonBase: { defaultProps: { disableRipple: false } },
      MuiButton: { defaultProps: { disableElevation: true } },
      MuiLink: { defaultProps: { underline: 'always' } },
      MuiCssBaseline: {
        styleOverrides: {
          ':focus-visible': { outline: `3px solid ${light ? '#0b5cad' : '#8cc4ff'}` },
          code: { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' },
          '.visually-hidden': {
            position: 'absolute',
            width: 1,
            height: 1,
            overflow: 'hidden',
            clip: 'rect(0 0 0 0)',
            whiteSpace: 'nowrap',
          },
          '.skip-link': {
            position: 'absolute',
            left: -9999,
            zIndex: 2000,
            padding: 8,
            background: light ? '#ffffff' : '#171c22',
            color: light ? '#0b5cad' : '#8cc4ff',
          },
          '.skip-link:focus': { left: 8, top: 8 },
        },
      },
    },
  });
}

interface ModeCtx {
  mode: Mode;
  choice: Choice;
  toggle: () => void;
}
const Ctx = createContext<ModeCtx>({ mode: 'light', choice: 'system', toggle: () => {} });

export function useThemeMode() {
  return useContext(Ctx);
}

function stored(): Choice {
  const v = typeof localStorage === 'undefined' ? null : localStorage.getItem(KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

export function ThemeModeProvider({ children }: { children: ReactNode }) {
  const prefersDark = useMediaQuery('(prefers-color-scheme: dark)', { noSsr: true });
  const [choice, setChoice] = useState<Choice>(stored);
  const mode: Mode = choice === 'system' ? (prefersDark ? 'dark' : 'light') : choice;
  const theme = useMemo(() => makeTheme(mode), [mode]);
  useEffect(() => {
    document.documentElement.style.colorScheme = mode;
  }, [mode]);
  const value = useMemo(
    () => ({
      mode,
      choice,
      toggle: () => {
        const next: Mode = mode === 'dark' ? 'light' : 'dark';
        localStorage.setItem(KEY, next);
        setChoice(next);
      },
    }),
    [mode, choice],
  );
  return (
    <Ctx.Provider value={value}>
      <ThemeProvider theme={theme}>
        <CssBaseline />
        {children}
      </ThemeProvider>
    </Ctx.Provider>
  );
}
