// The environment that keeps wrangler offline and quiet (no telemetry, no Cloudflare API calls, no banner), in
// one place for `npm start`, the seeding tool, tests and benches. .ci/run exports the same four in shell.
export const WRANGLER_OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
} as const;

/** Puts the offline settings into this process's environment; call before wrangler is imported or run. */
export function keepWranglerOffline(): void {
  Object.assign(process.env, WRANGLER_OFFLINE_ENV);
}
