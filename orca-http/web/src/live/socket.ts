// The live-updates WebSocket: a one-time ticket per connection, subscriptions by job or by
// execution, and a reconnect with backoff that resubscribes from where each execution's output
// stopped (`from_seq` / `offsets`), so the buffers see no gap (and skip any overlap).

import { authFetch, errorOf } from '../auth/session';

export type LiveState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveEvent {
  sub?: string;
  type: 'output' | 'execution' | 'job' | 'end' | 'error' | string;
  execution_id?: string;
  system_id?: string;
  job_id?: string;
  status?: string;
  seq?: number;
  stream?: string;
  data?: string;
  encoding?: string;
  code?: string;
  message?: string;
}

export type Subscription =
  | { id: string; job_id: string; offsets: () => Record<string, number> }
  | { id: string; execution_id: string; from_seq: () => number };

export interface LiveOptions {
  onEvents: (events: LiveEvent[]) => void;
  onState: (s: LiveState) => void;
}

/** Backoff before reconnect attempt `n` (0-based): 0.5 s doubling to 10 s, with jitter. */
export function backoff(n: number, random: () => number = Math.random): number {
  const base = Math.min(10_000, 500 * 2 ** n);
  return Math.round(base * (0.75 + random() * 0.5));
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private subs = new Map<string, Subscription>();
  private attempts = 0;
  private closed = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private opts: LiveOptions) {
    void this.connect();
  }

  subscribe(s: Subscription) {
    this.subs.set(s.id, s);
    this.send(s);
  }

  unsubscribe(id: string) {
    if (this.subs.delete(id) && this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'unsubscribe', id }));
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.ws?.close();
    this.opts.onState('closed');
  }

  /** Drop the connection as a network failure would (tests, "reconnect now"). */
  drop() {
    this.ws?.close();
  }

  private send(s: Subscription) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    const msg =
      'job_id' in s
        ? { type: 'subscribe', id: s.id, job_id: s.job_id, offsets: s.offsets() }
        : { type: 'subscribe', id: s.id, execution_id: s.execution_id, from_seq: s.from_seq() };
    this.ws.send(JSON.stringify(msg));
  }

  private async connect() {
    if (this.closed) return;
    this.opts.onState(this.attempts === 0 ? 'connecting' : 'reconnecting');
    try {
      const resp = await authFetch('/api/v1/ws/ticket', { method: 'POST' });
      if (!resp.ok) throw await errorOf(resp);
      const { url } = (await resp.json()) as { url: string };
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(`${proto}//${location.host}${url}`);
      this.ws = ws;
      ws.onopen = () => {
        this.attempts = 0;
        this.opts.onState('open');
        for (const s of this.subs.values()) this.send(s);
      };
      ws.onmessage = (m) => {
        try {
          const frame = JSON.parse(String(m.data)) as { type: string; events?: LiveEvent[] };
          if (frame.type === 'events' && frame.events) this.opts.onEvents(frame.events);
        } catch {
          /* ignore a frame that is not JSON */
        }
      };
      ws.onclose = () => {
        if (this.ws === ws) this.ws = null;
        this.retry();
      };
    } catch {
      this.retry();
    }
  }

  private retry() {
    if (this.closed) return;
    this.opts.onState('reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), backoff(this.attempts++));
  }
}
