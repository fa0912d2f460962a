// GET /admin: the dashboard page (src/dashboard/page.ts), behind ADMIN_TOKEN like every admin route (bearer
// header, or ?token= from the address bar, which the page then moves to sessionStorage). A browser that comes
// back without the token (a reload) gets the same page with 401: it holds no data, and its script reuses the
// token of this tab's session or asks for one; API clients get the usual JSON 401.
import type { Context } from 'hono';
import { dashboardCsp, dashboardHtml } from '../dashboard/page';
import type { AppEnv } from '../config/env';
import type { AppContext } from './inference';

function page(status: 200 | 401): Response {
  const nonce = crypto.randomUUID().replaceAll('-', '');
  return new Response(dashboardHtml(nonce), {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': dashboardCsp(nonce),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    },
  });
}

export function getDashboard(_c: AppContext): Response {
  return page(200);
}

/** For requireAdmin: a browser navigating to /admin without a valid token gets the page with 401 instead of JSON. */
export function dashboardUnauthorized(c: Context<{ Bindings: AppEnv }>): Response | null {
  if (c.req.method !== 'GET' || c.req.path !== '/admin') return null;
  return /\btext\/html\b/.test(c.req.header('accept') ?? '') ? page(401) : null;
}
