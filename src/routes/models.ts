// GET /v1/models and /v1/models/:id: the served model in OpenAI's list shape (no loading needed).
import { appConfig } from '../config/env';
import { ModelNotFoundError } from '../common/errors';
import type { AppContext } from './inference';

function modelObject(id: string) {
  return { id, object: 'model', created: 0, owned_by: 'moe-edge' };
}

export function listModels(c: AppContext): Response {
  return c.json({ object: 'list', data: [modelObject(appConfig(c.env).modelId)] });
}

export function getModel(c: AppContext): Response {
  const id = c.req.param('id') ?? '';
  if (id !== appConfig(c.env).modelId) throw new ModelNotFoundError(id);
  return c.json(modelObject(id));
}
