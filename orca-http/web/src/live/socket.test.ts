import { describe, expect, it } from 'vitest';
import { backoff } from './socket';

describe('backoff', () => {
  it('doubles from half a second up to ten seconds', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoff(n, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 10000, 10000,
    ]);
  });
  it('jitters within a quarter either way', () => {
    expect(backoff(1, () => 0)).toBe(750);
    expect(backoff(1, () => 1)).toBe(1250);
  });
});
