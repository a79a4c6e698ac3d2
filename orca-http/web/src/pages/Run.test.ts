import { describe, expect, it } from 'vitest';
import { splitList, validateRun } from './Run';

describe('run form', () => {
  it('splits a selection into unique names', () => {
    expect(splitList(' web1, web2 web1\ndb1 ')).toEqual(['web1', 'web2', 'db1']);
    expect(splitList('')).toEqual([]);
  });
  it('explains what is wrong', () => {
    expect(validateRun({ command: '', timeout: '', concurrency: '', retries: '0' })).toEqual({
      command: 'Enter a command.',
    });
    expect(validateRun({ command: 'x', timeout: '0', concurrency: 'a', retries: '101' })).toEqual({
      timeout: 'Seconds, 1 to 2592000.',
      concurrency: 'A number from 1.',
      retries: '0 to 100.',
    });
  });
});
