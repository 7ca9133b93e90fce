// NIfTI qform <-> affine conversion, following nifti1_io.c (nifti_quatern_to_mat44 and
// nifti_mat44_to_quatern), which nibabel matches: a sheared affine gets the closest rotation
// (polar decomposition), and a negative determinant is carried by qfac = pixdim[0] = -1.

export type Matrix3 = [[number, number, number], [number, number, number], [number, number, number]];

/** The quaternion form of a voxel-to-world affine, as stored in a NIfTI header. */
export interface Qform {
  quaternB: number;
  quaternC: number;
  quaternD: number;
  /** qoffset_x/y/z: world position of voxel (0, 0, 0). */
  offset: [number, number, number];
  /** pixdim[1..3]: voxel sizes (column norms of the affine). */
  pixdim: [number, number, number];
  /** pixdim[0]: -1 when the affine flips handedness, else 1. */
  qfac: 1 | -1;
}

/** The 4x4 affine of a qform. Non-positive voxel sizes count as 1, as in nifti1_io. */
export function qformToAffine(q: Qform): number[][] {
  let b = q.quaternB;
  let c = q.quaternC;
  let d = q.quaternD;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    // (b, c, d) is (nearly) a unit vector: a 180 degree rotation; renormalise against float32 rounding.
    const norm = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= norm;
    c *= norm;
    d *= norm;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const xd = q.pixdim[0] > 0 ? q.pixdim[0] : 1;
  const yd = q.pixdim[1] > 0 ? q.pixdim[1] : 1;
  const zd = (q.pixdim[2] > 0 ? q.pixdim[2] : 1) * q.qfac;
  return [
    [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, q.offset[0]],
    [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, q.offset[1]],
    [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, q.offset[2]],
    [0, 0, 0, 1],
  ];
}

/**
 * The qform closest to `affine`. Exact for rotation x scaling (x reflection); for a sheared affine
 * the rotation is the nearest orthogonal matrix, so only the sform can carry it exactly.
 * `fallbackPixdim` replaces the size of an all-zero column (a degenerate affine).
 */
export function affineToQform(affine: number[][], fallbackPixdim: [number, number, number] = [1, 1, 1]): Qform {
  const columns: [number, number, number][] = [0, 1, 2].map((c) => [affine[0][c], affine[1][c], affine[2][c]]);
  const pixdim = [0, 0, 0] as [number, number, number];
  columns.forEach((col, c) => {
    const norm = Math.hypot(col[0], col[1], col[2]);
    if (norm === 0) {
      // nifti1_io replaces a zero column with the matching unit vector.
      col[c] = 1;
      pixdim[c] = fallbackPixdim[c] > 0 ? fallbackPixdim[c] : 1;
    } else {
      col[0] /= norm;
      col[1] /= norm;
      col[2] /= norm;
      pixdim[c] = norm;
    }
  });
  const r = nearestOrthogonal([
    [columns[0][0], columns[1][0], columns[2][0]],
    [columns[0][1], columns[1][1], columns[2][1]],
    [columns[0][2], columns[1][2], columns[2][2]],
  ]);
  let qfac: 1 | -1 = 1;
  if (det3(r) < 0) {
    qfac = -1;
    for (const row of r) row[2] = -row[2];
  }
  const [b, c, d] = rotationToQuaternion(r);
  return { quaternB: b, quaternC: c, quaternD: d, offset: [affine[0][3], affine[1][3], affine[2][3]], pixdim, qfac };
}

/** Quaternion (b, c, d) with a >= 0 of a proper rotation matrix (nifti_mat44_to_quatern). */
function rotationToQuaternion(r: Matrix3): [number, number, number] {
  const [[r11, r12, r13], [r21, r22, r23], [r31, r32, r33]] = r;
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    // Near a 180 degree rotation the trace formula loses precision: pivot on the largest diagonal.
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    // The header stores only (b, c, d) and assumes a >= 0; (a, b, c, d) and its negative are the same rotation.
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return [b, c, d];
}

/** The orthogonal matrix nearest to `m` (polar decomposition by Newton iteration X <- (X + X^-T) / 2). */
export function nearestOrthogonal(m: Matrix3): Matrix3 {
  let x = m.map((row) => [...row]) as Matrix3;
  // A singular matrix has no inverse; nudge the diagonal as nifti_mat33_polar does.
  for (let tries = 0; Math.abs(det3(x)) < 1e-12 && tries < 10; tries++) {
    for (let i = 0; i < 3; i++) x[i][i] += 1e-5 * (tries + 1);
  }
  for (let k = 0; k < 100; k++) {
    const inv = inverse3(x);
    const next = x.map((row, i) => row.map((v, j) => 0.5 * (v + inv[j][i]))) as Matrix3;
    let change = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) change += Math.abs(next[i][j] - x[i][j]);
    x = next;
    if (change < 1e-13) break;
  }
  return x;
}

export function det3(m: Matrix3): number {
  return (
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
    m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
    m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
  );
}

function inverse3(m: Matrix3): Matrix3 {
  const det = det3(m);
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}
