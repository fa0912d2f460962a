// The Worker entry: the Hono app over a per-isolate model cache that loads the model from R2.
import { createApp } from './app';
import { loadModelFromR2 } from './runtime/load-model';
import { ModelCache } from './runtime/model-cache';

export default createApp(new ModelCache(loadModelFromR2));
