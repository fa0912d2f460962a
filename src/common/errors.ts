// The base of moe-edge's typed errors (MoeError: HTTP status, OpenAI error `type` and `code`) and the model and
// request errors of the serving path. A component's own errors live beside it (remote/errors.ts, store/source.ts,
// hotset/, runtime/admission.ts, ...) and extend MoeError; src/http/errors.ts maps any of them to the response.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export interface MoeErrorInit {
  status: number;
  code: string;
  type: ErrorType;
  param?: string | null;
  cause?: unknown;
}

export class MoeError extends Error {
  readonly status: number;
  readonly code: string;
  readonly type: ErrorType;
  readonly param: string | null;

  constructor(message: string, init: MoeErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.type = init.type;
    this.param = init.param ?? null;
  }
}

/** A model object whose size or SHA-256 differs from its manifest entry: the model in storage is corrupt. */
export class ShardIntegrityError extends MoeError {
  constructor(
    readonly object: string,
    readonly expected: { sha256: string; bytes: number },
    readonly actual: { sha256: string; bytes: number },
  ) {
    super(
      `model object ${object} failed its integrity check: expected ${expected.bytes} bytes with sha256 ${expected.sha256}, ` +
        `got ${actual.bytes} bytes with sha256 ${actual.sha256}`,
      { status: 500, code: 'shard_integrity', type: 'server_error' },
    );
  }
}

/** A model object that the manifest promises (or a reader asked for) is not in storage. */
export class ObjectNotFoundError extends MoeError {
  constructor(readonly object: string, where: string, detail = 'not found') {
    super(`model object ${object} ${detail} in ${where}`, { status: 500, code: 'model_object_missing', type: 'server_error' });
  }
}

/**
 * No manifest.json where the model should be: never uploaded, or an upload still under way (upload writes the
 * manifest last, so a half-uploaded model is never served). 503: it may appear soon.
 */
export class ModelNotUploadedError extends MoeError {
  constructor(readonly model: string, where: string) {
    super(`model ${model} is not uploaded: ${where}/manifest.json does not exist (an upload writes it last, after every other object)`, {
      status: 503,
      code: 'model_not_uploaded',
      type: 'server_error',
    });
  }
}

export class ModelNotFoundError extends MoeError {
  constructor(readonly model: string) {
    super(`The model '${model}' does not exist`, { status: 404, code: 'model_not_found', type: 'invalid_request_error', param: 'model' });
  }
}

/** 400: prompt + completion do not fit the context (OpenAI's message; src/engine/context.ts checks it). */
export class ContextOverflowError extends MoeError {
  constructor(readonly contextLength: number, promptTokens: number, completionTokens: number, promptParam: string) {
    super(
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${promptTokens + completionTokens} tokens ` +
        `(${promptTokens} in the ${promptParam}, ${completionTokens} in the completion). Please reduce the length of the ${promptParam} or completion.`,
      { status: 400, code: 'context_length_exceeded', type: 'invalid_request_error', param: promptParam },
    );
  }
}

export class InvalidRequestError extends MoeError {
  constructor(message: string, param: string | null = null, code = 'invalid_request') {
    super(message, { status: 400, code, type: 'invalid_request_error', param });
  }
}
