// HTTP-only errors (auth, body size, unknown route) and the one mapping from any thrown value to an
// OpenAI-shaped error response `{ error: { message, type, param, code } }`.
import { MoeError } from '../common/errors';

export class AuthenticationError extends MoeError {
  constructor(message: string) {
    super(message, { status: 401, code: 'invalid_api_key', type: 'authentication_error' });
  }
}

export class PayloadTooLargeError extends MoeError {
  constructor(limit: number) {
    super(`Request body exceeds the limit of ${limit} bytes`, { status: 413, code: 'payload_too_large', type: 'invalid_request_error' });
  }
}

export class RouteNotFoundError extends MoeError {
  constructor(method: string, path: string) {
    super(`Unknown request URL: ${method} ${path}`, { status: 404, code: 'unknown_url', type: 'invalid_request_error' });
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Turns any thrown value into a status and body; unknown errors become 500 server_error. */
export function describeError(err: unknown): { status: number; body: OpenAIErrorBody } {
  if (err instanceof MoeError) {
    return { status: err.status, body: { error: { message: err.message, type: err.type, param: err.param, code: err.code } } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: { message: `Internal error: ${message}`, type: 'server_error', param: null, code: 'internal_error' } } };
}

export function errorResponse(err: unknown): Response {
  const { status, body } = describeError(err);
  // 429 / 503 from admission say when to come back (the OpenAI SDKs honour Retry-After)
  const retry = err instanceof MoeError ? (err as MoeError & { retryAfterSeconds?: unknown }).retryAfterSeconds : undefined;
  return Response.json(body, { status, headers: typeof retry === 'number' ? { 'retry-after': String(retry) } : undefined });
}

/** An abort raised by our own AbortSignal (client went away); nobody is left to answer. */
export function isAbort(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted && (err === signal.reason || (err instanceof Error && err.name === 'AbortError'));
}
