// Comparing logits rows: the largest absolute difference over every row and vocabulary entry.

export function maxAbsDiff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} rows vs ${b.length}`);
  let m = 0;
  a.forEach((row, r) => {
    for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i] - b[r][i]));
  });
  return m;
}
