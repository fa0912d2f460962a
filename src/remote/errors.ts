// Typed errors of the backend client. Each names why the generation stopped using the backend (its
// DegradedReason) and maps to 502 (backend failed) or 504 (backend too slow) when DEGRADED_POLICY=error.
import type { DegradedReason } from '../engine/api';
import { MoeError } from '../common/errors';

/** The error `code` clients see for each reason. */
export const BACKEND_ERROR_CODES: Readonly<Record<DegradedReason, string>> = {
  no_backend: 'backend_not_configured',
  unavailable: 'backend_unavailable',
  timeout: 'backend_timeout',
  protocol: 'backend_protocol_error',
  unauthorized: 'backend_unauthorized',
  backend_error: 'backend_error',
};

/** The same reasons, when an expert-shard Worker is what failed. */
export const SHARD_ERROR_CODES: Readonly<Record<DegradedReason, string>> = {
  no_backend: 'shard_not_configured',
  unavailable: 'shard_unavailable',
  timeout: 'shard_timeout',
  protocol: 'shard_protocol_error',
  unauthorized: 'shard_unauthorized',
  backend_error: 'shard_error',
};

const TIERS = { backend: { name: 'GPU backend', codes: BACKEND_ERROR_CODES }, shard: { name: 'expert shard', codes: SHARD_ERROR_CODES } } as const;

export class BackendError extends MoeError {
  constructor(readonly reason: DegradedReason, readonly detail: string, status: 502 | 504, cause?: unknown, readonly tier: keyof typeof TIERS = 'backend') {
    super(`${TIERS[tier].name}: ${detail}`, { status, code: TIERS[tier].codes[reason], type: 'server_error', cause });
  }
}

/** A failure of an expert-shard Worker's session (same transport, same reasons), named as the shard tier's. */
export function asShardError(e: BackendError): BackendError {
  return e.tier === 'shard' ? e : new BackendError(e.reason, e.detail, e.status as 502 | 504, e, 'shard');
}

/** Unreachable, closed, refused our token, answered an error frame or garbage: 502. */
export class BackendUnavailableError extends BackendError {
  constructor(reason: Exclude<DegradedReason, 'timeout'>, message: string, cause?: unknown) {
    super(reason, message, 502, cause);
  }
}

/** No answer (or no connection) within BACKEND_TIMEOUT_MS: 504. */
export class BackendTimeoutError extends BackendError {
  constructor(message: string) {
    super('timeout', message, 504);
  }
}

/** BACKENDS that cannot be used (bad JSON, overlapping or missing owners for the model): every route answers 500. */
export class BackendsConfigError extends MoeError {
  constructor(detail: string) {
    super(`configuration BACKENDS is invalid: ${detail}`, { status: 500, code: 'invalid_config', type: 'server_error' });
  }
}
