// Bearer-key check for /v1/*: active only when API_KEYS is set; 401 in OpenAI's shape otherwise.
import type { MiddlewareHandler } from 'hono';
import { appConfig, type AppEnv } from '../env';
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
  const given = match[1]!.trim();
  if (!keys.some((k) => constantTimeEqual(k, given))) throw new AuthenticationError('Incorrect API key provided.');
  return next();
};

// Compares every character of equal-length strings so the time does not reveal a matching prefix.
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
