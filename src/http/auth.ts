// Bearer-key check for /v1/*: active only when API_KEYS is set; 401 in OpenAI's shape otherwise. Keys are
// compared in constant time (SHA-256 of both sides), and never echoed.
import type { MiddlewareHandler } from 'hono';
import { appConfig, type AppEnv } from '../config/env';
import { AuthenticationError } from './errors';

export const requireApiKey: MiddlewareHandler<{ Bindings: AppEnv }> = async (c, next) => {
  const keys = appConfig(c.env).apiKeys;
  if (keys.length === 0) return next();
  const header = c.req.header('authorization') ?? '';
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match) {
    throw new AuthenticationError(
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  // The key itself never goes into a message or a log line: a wrong key is often a real key of something else.
  if (!(await matchesAny(match[1]!.trim(), keys))) throw new AuthenticationError('Incorrect API key provided.');
  return next();
};

/**
 * Whether `given` equals one of `keys`, in time that depends on neither: both sides are hashed first (equal
 * lengths, so neither a matching prefix nor the key's length shows), and every key is compared, without
 * stopping at the first match.
 */
export async function matchesAny(given: string, keys: readonly string[]): Promise<boolean> {
  const want = await Promise.all(keys.map(digest));
  const got = await digest(given);
  let found = 0;
  for (const w of want) {
    let diff = 0;
    for (let i = 0; i < w.length; i++) diff |= w[i]! ^ got[i]!;
    found |= diff === 0 ? 1 : 0;
  }
  return found === 1;
}

async function digest(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
}
