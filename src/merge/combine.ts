// Folding removed experts into a kept one: SwiGLU experts have no fixed neuron order, so each removed expert's
// neurons are first matched to the kept expert's (a min-cost assignment on weight similarity, with the
// function-preserving sign flip of up and down) and only then are the weights averaged, by routing frequency.
import { minCostAssignment } from './assignment';

/** One expert's weights as floats: gate and up (I, H), down (H, I), row-major. */
export interface ExpertFloats {
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

/** A member of a merge group: its weights and its share (routing count) of the group. */
export interface Weighted {
  w: ExpertFloats;
  weight: number;
}

function rowNorms(m: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += m[r * cols + c] * m[r * cols + c];
    out[r] = Math.sqrt(s) || 1;
  }
  return out;
}

/** Down (H, I) -> its columns as rows (I, H), so a neuron's three vectors are all rows. */
function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

/**
 * `other` with its neurons reordered (and signs of up/down flipped where that matches better) so that neuron i
 * lines up with neuron i of `base`. Similarity of two neurons: cos(gate) + |cos(up)| + |cos(down)|; silu(g.x)
 * (u.x) d is unchanged when u and d both change sign, so only their pairing, not their sign, is matched.
 */
export function alignTo(base: ExpertFloats, other: ExpertFloats, I: number, H: number): ExpertFloats {
  const bd = transpose(base.down, H, I);
  const od = transpose(other.down, H, I);
  const n = { bg: rowNorms(base.gate, I, H), bu: rowNorms(base.up, I, H), bd: rowNorms(bd, I, H), og: rowNorms(other.gate, I, H), ou: rowNorms(other.up, I, H), od: rowNorms(od, I, H) };
  const cost = new Float64Array(I * I);
  const upCos = new Float64Array(I * I);
  for (let i = 0; i < I; i++) {
    for (let j = 0; j < I; j++) {
      let g = 0;
      let u = 0;
      let d = 0;
      for (let h = 0; h < H; h++) {
        g += base.gate[i * H + h] * other.gate[j * H + h];
        u += base.up[i * H + h] * other.up[j * H + h];
        d += bd[i * H + h] * od[j * H + h];
      }
      const cu = u / (n.bu[i] * n.ou[j]);
      upCos[i * I + j] = cu;
      cost[i * I + j] = -(g / (n.bg[i] * n.og[j]) + Math.abs(cu) + Math.abs(d / (n.bd[i] * n.od[j])));
    }
  }
  const assign = minCostAssignment(cost, I);
  const out: ExpertFloats = { gate: new Float32Array(I * H), up: new Float32Array(I * H), down: new Float32Array(H * I) };
  for (let i = 0; i < I; i++) {
    const j = assign[i];
    const s = upCos[i * I + j] < 0 ? -1 : 1;
    for (let h = 0; h < H; h++) {
      out.gate[i * H + h] = other.gate[j * H + h];
      out.up[i * H + h] = s * other.up[j * H + h];
      out.down[h * I + i] = s * other.down[h * I + j];
    }
  }
  return out;
}

/** sum_i weight_i * w_i / sum_i weight_i, tensor by tensor (weights all zero: a plain mean). */
export function weightedAverage(members: readonly Weighted[]): ExpertFloats {
  if (members.length === 0) throw new RangeError('weightedAverage: no members');
  const total = members.reduce((s, m) => s + m.weight, 0);
  const share = members.map((m) => (total > 0 ? m.weight / total : 1 / members.length));
  const avg = (pick: (w: ExpertFloats) => Float32Array) => {
    const out = new Float32Array(pick(members[0].w).length);
    members.forEach((m, k) => {
      const src = pick(m.w);
      for (let i = 0; i < out.length; i++) out[i] += share[k] * src[i];
    });
    return out;
  };
  return { gate: avg((w) => w.gate), up: avg((w) => w.up), down: avg((w) => w.down) };
}

/** The kept expert `base` with `others` folded in: each aligned to it, then all averaged by routing frequency. */
export function mergeInto(base: Weighted, others: readonly Weighted[], I: number, H: number): ExpertFloats {
  if (others.length === 0) return base.w;
  return weightedAverage([base, ...others.map((o) => ({ w: alignTo(base.w, o.w, I, H), weight: o.weight }))]);
}
