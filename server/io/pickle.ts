// A minimal, safe reader of Python pickles (protocols 2–5), enough for PyTorch checkpoints.
// Written by hand because no maintained npm library unpickles without executing or allowlisting
// code; here nothing is executed: globals become inert `PyGlobal` markers and calls on them
// become `PyObject` records, which the caller interprets (e.g. torch's tensor rebuild).

/** A reference to `module.name` found in the pickle. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The result of calling a global (REDUCE/NEWOBJ), with any BUILD state. */
export class PyObject {
  state: unknown = undefined;
  /** Items set on the object by SETITEM(S), for dict subclasses we do not know. */
  items: Map<unknown, unknown> | undefined;
  /** Items appended by APPEND(S), for list subclasses we do not know. */
  elements: unknown[] | undefined;
  constructor(
    readonly callee: PyGlobal,
    readonly args: unknown[],
  ) {}
}

/** Python dicts keep their key order and may have non-string keys: a Map. */
export type PyDict = Map<unknown, unknown>;

/** A persistent id reference (torch storages), resolved by the caller's `persistentLoad`. */
export type PersistentLoad = (pid: unknown) => unknown;

/** Called for REDUCE/NEWOBJ; return a value to replace the default PyObject record. */
export type ReduceHook = (callee: PyGlobal, args: unknown[]) => unknown;

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

const MARK = Symbol('mark');

/** Globals that only build plain data (protocol 2 spells sets and bytes this way); nothing runs. */
function plainDataConstructor(callee: PyGlobal, args: unknown[]): unknown {
  const module = callee.module === '__builtin__' ? 'builtins' : callee.module;
  switch (`${module}.${callee.name}`) {
    case 'collections.OrderedDict':
      return args.length === 0 ? new Map() : undefined;
    case 'builtins.set':
    case 'builtins.frozenset':
      return new Set(Array.isArray(args[0]) ? args[0] : []);
    case '_codecs.encode':
      // bytes in protocol 2: encode(str, 'latin1') where each char is one byte
      return args[1] === 'latin1' || args[1] === 'latin-1' ? Uint8Array.from(String(args[0]), (c) => c.charCodeAt(0) & 0xff) : undefined;
    default:
      return undefined;
  }
}

export interface UnpickleOptions {
  persistentLoad?: PersistentLoad;
  reduce?: ReduceHook;
}

/** Unpickles `bytes`. Throws PickleError on an unknown opcode or malformed stream. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let pos = 0;
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (pos + n > bytes.length) throw new PickleError(`truncated pickle at byte ${pos} (needs ${n} more)`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError('length too large');
    return Number(v);
  };
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError('unterminated text line');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    const idx = stack.lastIndexOf(MARK);
    if (idx < 0) throw new PickleError('MARK not found');
    const items = stack.splice(idx);
    return items.slice(1);
  };
  const top = () => {
    if (stack.length === 0) throw new PickleError('stack underflow');
    return stack[stack.length - 1];
  };
  const pop = () => {
    if (stack.length === 0) throw new PickleError('stack underflow');
    return stack.pop();
  };
  const littleLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const call = (callee: unknown, args: unknown[]) => {
    if (!(callee instanceof PyGlobal)) throw new PickleError('REDUCE on a value that is not a global');
    const data = plainDataConstructor(callee, args);
    if (data !== undefined) return data;
    const hooked = options.reduce?.(callee, args);
    return hooked !== undefined ? hooked : new PyObject(callee, args);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    const map = target instanceof PyObject ? (target.items ??= new Map()) : target;
    if (!(map instanceof Map)) throw new PickleError('SETITEM(S) on a value that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2) map.set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof Set) items.forEach((x) => target.add(x));
    else if (target instanceof PyObject) (target.elements ??= []).push(...items);
    else throw new PickleError('APPEND(S) on a value that is not a list');
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: return pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(littleLong(take(u8()))); break; // LONG1
      case 0x8b: stack.push(littleLong(take(u32()))); break; // LONG4
      case 0x49: { // INT (text); "01"/"00" are the protocol-0 booleans
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number(s));
        break;
      }
      case 0x4c: stack.push(Number(line().replace(/L$/, ''))); break; // LONG (text)
      case 0x47: stack.push((need(8), (pos += 8), view.getFloat64(pos - 8, false))); break; // BINFLOAT (big-endian)
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x58: stack.push(text.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text.decode(take(u64()))); break; // BINUNICODE8
      case 0x54: stack.push(latin1.decode(take(i32()))); break; // BINSTRING
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(new Uint8Array(take(u32()))); break; // BINBYTES
      case 0x43: stack.push(new Uint8Array(take(u8()))); break; // SHORT_BINBYTES
      case 0x8e: stack.push(new Uint8Array(take(u64()))); break; // BINBYTES8
      case 0x96: stack.push(new Uint8Array(take(u64()))); break; // BYTEARRAY8
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x29: stack.push([]); break; // EMPTY_TUPLE (tuples are arrays)
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const key = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(key)) throw new PickleError(`memo key ${key} missing`);
        stack.push(memo.get(key));
        break;
      }
      case 0x63: { const module = line(); stack.push(new PyGlobal(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop() as string; const module = pop() as string; stack.push(new PyGlobal(module, name)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop() as unknown[]; const callee = pop(); stack.push(call(callee, args)); break; } // REDUCE
      case 0x81: { const args = pop() as unknown[]; const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop() as unknown[]; const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ_EX
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        // BUILD sets instance attributes (e.g. a state dict's `_metadata`), never dict items.
        if (obj instanceof PyObject) obj.state = state;
        break;
      }
      case 0x51: { // BINPERSID
        if (!options.persistentLoad) throw new PickleError('persistent id found but no persistentLoad given');
        stack.push(options.persistentLoad(pop()));
        break;
      }
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16)} at byte ${pos - 1}`);
    }
  }
}
