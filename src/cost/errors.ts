// The cost model's one error: an input it does not have (no measured figure, no price, a bad option). The CLI
// prints its message and exits 2, so a script can tell "cannot answer" from a crash.
export class CostInputError extends Error {
  override name = 'CostInputError';
}
