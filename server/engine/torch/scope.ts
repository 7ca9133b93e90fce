// Deterministic release of native tensors, after tfjs-core's engine: every tensor created inside
// `tidy(fn)` is disposed when fn returns, except the ones it returns (handed to the enclosing
// scope) and the ones passed to `keep()`. Outside any scope, tensors live until dispose().

export interface Owned {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Owned>[] = [];

/** Called by every new tensor: the innermost open scope becomes its owner. */
export function track<T extends Owned>(t: T): T {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
  return t;
}

/** Exempts a tensor from every open tidy() scope; the caller disposes it. */
export function keep<T extends Owned>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Tensors reachable from a scope's result (arrays, plain objects, Maps), to survive the scope. */
function reachable(value: unknown, isOwned: (v: unknown) => v is Owned, out = new Set<Owned>(), seen = new Set<unknown>()) {
  if (value === null || typeof value !== 'object' || seen.has(value)) return out;
  seen.add(value);
  if (isOwned(value)) out.add(value);
  else if (Array.isArray(value)) for (const v of value) reachable(v, isOwned, out, seen);
  else if (value instanceof Map) for (const v of value.values()) reachable(v, isOwned, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) reachable(v, isOwned, out, seen);
  }
  return out;
}

let ownedCheck: (v: unknown) => v is Owned = (_v: unknown): _v is Owned => false;

/** Set once by the tensor module: which values are tensors. */
export function setOwnedCheck(check: (v: unknown) => v is Owned): void {
  ownedCheck = check;
}

/**
 * Runs fn and disposes the tensors it created, except those it returns (which join the enclosing
 * scope) and kept ones. fn must be synchronous: an async fn's tensors would outlive the scope.
 * On a throw every tensor of the scope is disposed and the error passes through.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Owned>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new Error('tidy(fn): fn returned a Promise; tidy scopes must be synchronous');
  }
  const survivors = reachable(result, ownedCheck);
  const parent = scopes.length > 0 ? scopes[scopes.length - 1] : null;
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Number of open tidy() scopes (for diagnostics). */
export function scopeDepth(): number {
  return scopes.length;
}
