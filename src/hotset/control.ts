// The run-time control of a served model's hot set, as the admin routes use it: read what runs, plan from
// the isolate's routing statistics, validate and install a new version. A model that keeps every expert
// resident for good (the CLI's) has none; the routes ask TextModel.hotSet instead of the model's class.
import type { Manifest } from '../format/manifest';
import type { RoutingTally } from '../routing/tally';
import type { ProfiledHotSet, TierOne } from './profiles';
import type { HotSetBody } from './spec';
import type { StoredHotSet } from './store';
import type { HotVersion } from './versions';

export interface HotSetControl {
  readonly manifest: Manifest;
  /** What this isolate runs now (the weights stay behind generation leases). */
  readonly hotVersion: Pick<HotVersion, 'id' | 'source' | 'hotSet'>;
  /** HOT_BUDGET_MB in bytes; null: no limit. */
  readonly budgetBytes: number | null;
  /** The current hot set's profiles and skill map (null: it has none). */
  readonly tier: TierOne | null;
  /** This isolate's routing statistics of the model, what a plan starts from (null: not counted). */
  readonly routing: RoutingTally | null;
  /** Look for a newer hot-set.json (force: now); never fails. */
  refreshIfDue(force?: boolean): Promise<void>;
  /** Validates a PUT /admin/hot-set body against the model and the budget (HotSetError: 400). */
  resolveHotSetBody(body: HotSetBody): ProfiledHotSet;
  /** Installs a stored hot set unless a newer one was seen. */
  applyStored(stored: StoredHotSet): Promise<unknown>;
}
