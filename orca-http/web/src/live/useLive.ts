import { useEffect, useRef, useState } from 'react';
import { LiveSocket, type LiveEvent, type LiveState, type Subscription } from './socket';

/**
 * One live socket for a component, with `onEvents` called with everything that arrived since
 * the last animation frame (so a fast stream re-renders at most once per frame).
 */
export function useLive(
  subscription: Subscription | null,
  onEvents: (events: LiveEvent[]) => void,
): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const handler = useRef(onEvents);
  handler.current = onEvents;
  const key = subscription ? subscription.id : '';
  const subRef = useRef(subscription);
  subRef.current = subscription;
  useEffect(() => {
    const sub = subRef.current;
    if (!sub) return;
    let queued: LiveEvent[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = queued;
      queued = [];
      handler.current(batch);
    };
    const socket = new LiveSocket({
      onEvents: (events) => {
        queued.push(...events);
        if (!frame) frame = requestAnimationFrame(flush);
      },
      onState: setState,
    });
    socket.subscribe(sub);
    (window as unknown as { __orcaSockets?: LiveSocket[] }).__orcaSockets ??= [];
    (window as unknown as { __orcaSockets: LiveSocket[] }).__orcaSockets.push(socket);
    return () => {
      if (frame) cancelAnimationFrame(frame);
      socket.close();
      const all = (window as unknown as { __orcaSockets?: LiveSocket[] }).__orcaSockets;
      if (all) all.splice(all.indexOf(socket), 1);
    };
  }, [key]);
  return state;
}
