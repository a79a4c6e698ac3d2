// axe-core (WCAG 2.1 A and AA) on every page in both themes, and a screenshot of each into
// docs/ui/ for docs/ui.md.
import { expect, test, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { run, signIn } from './helpers';

// Screenshots for docs/ui.md when ORCA_UI_SCREENSHOTS names a directory (`npm run screenshots`).
const SHOTS = resolve(process.env.ORCA_UI_SCREENSHOTS ?? 'test-results/screenshots');
mkdirSync(SHOTS, { recursive: true });

const failures: string[] = [];

async function check(page: Page, name: string, theme: string) {
  await page.waitForLoadState('networkidle');
  await page.waitForTimeout(300);
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  const summary = result.violations.map(
    (v) =>
      `${v.id}: ${v.help}\n  ${v.nodes.map((n) => n.target.join(' ') + ' ' + n.failureSummary).join('\n  ')}`,
  );
  await page.screenshot({ path: `${SHOTS}/${name}-${theme}.png`, fullPage: false });
  failures.push(...summary.map((s) => `${name} (${theme}): ${s}`));
}

for (const theme of ['light', 'dark'] as const) {
  test(`every page passes axe in the ${theme} theme`, async ({ page }) => {
    test.setTimeout(120_000);
    await page.emulateMedia({ colorScheme: theme });
    await page.goto('/signin');
    await check(page, 'signin', theme);
    await signIn(page);
    const job = await run(
      page,
      'printf "hello from orca\\n"; echo "\\033[32mgreen\\033[0m ok"; echo warn >&2',
    );
    await expect(page.getByTestId('output')).toContainText('warn');
    await check(page, 'job', theme);
    const exec = page.getByRole('link', { name: 'Open' }).first();
    await exec.click();
    await expect(page.getByTestId('output')).toContainText('hello');
    await check(page, 'execution', theme);
    for (const [name, path] of [
      ['dashboard', '/'],
      ['systems', '/systems'],
      ['system', '/systems/local'],
      ['run', '/run'],
      ['history', '/jobs'],
      ['audit', '/audit'],
      ['admin', '/admin'],
      ['account', '/account'],
    ] as const) {
      await page.goto(path);
      await expect(page.locator('h1')).toBeVisible();
      await check(page, name, theme);
    }
    expect(job).toContain('/jobs/');
    expect(failures).toEqual([]);
  });
}
