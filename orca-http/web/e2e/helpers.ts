import { expect, type Page } from '@playwright/test';
import { ADMIN_PASSWORD } from './env';

export async function signIn(page: Page, user = 'admin', password = ADMIN_PASSWORD) {
  await page.goto('/signin');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** Submit a command on `local` from the Run page; returns the job page's URL. */
export async function run(page: Page, command: string): Promise<string> {
  await page.goto('/run');
  await page.getByLabel('Systems (names, comma or space separated)').fill('local');
  await page.getByRole('textbox', { name: 'Command' }).fill(command);
  await page.getByRole('button', { name: 'Run', exact: true }).click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  return page.url();
}
