// GET /healthz: whether this isolate can load (or has loaded) the model; 503 with the reason if not,
// so a load balancer or `npm start` sees a broken model store before clients do.
import { appConfig } from '../config/env';
import { describeError } from '../http/errors';
import { waitUntilOf, type AppContext, type ModelProvider } from './inference';

export function health(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const cfg = appConfig(c.env);
    try {
      const model = await provider.getModel(c.env, waitUntilOf(c));
      return c.json({ status: 'ok', model: { id: cfg.modelId, loaded: true, context_length: model.contextLength } });
    } catch (err) {
      const { body } = describeError(err);
      return c.json({ status: 'error', model: { id: cfg.modelId, loaded: false, error: body.error } }, 503);
    }
  };
}
