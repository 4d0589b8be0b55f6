import t from 'tap';
import fc from 'fast-check';
import { LiaisonError, type ProblemCode } from '../broker/core/errors.js';
import { parseStrictJson, type StrictJsonLimits } from '../broker/core/strict-json.js';
const LIMITS: StrictJsonLimits = { maxBytes: 10_000_000, maxDepth: 1000 };
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const parse = (input: Uint8Array | string, limits: Partial<StrictJsonLimits> = {}): unknown =>
  parseStrictJson(input, { ...LIMITS, ...limits });

/** The assertions `refuses` needs, structurally (tap's subtest type is a deep generic). */
interface Test {
  ok(value: unknown, message: string): boolean;
  equal(found: unknown, wanted: unknown, message: string): boolean;
  fail(message: string): boolean;
}

/**
 * Assert a refusal: a LiaisonError with this code, whose publicDetail starts with
 * `reason` and, when `pointer` is given, ends with ` at "<pointer>"`.
 */
function refuses(
  tt: Test,
  input: Uint8Array | string,
  code: ProblemCode,
  reason: string,
  opts: { limits?: Partial<StrictJsonLimits>; pointer?: string; name?: string } = {},
): LiaisonError | undefined {
  const name =
    opts.name ??
    (typeof input === 'string'
      ? JSON.stringify(input.length > 60 ? input.slice(0, 60) + '…' : input)
      : `bytes[${input.length}]`);
  try {
    parse(input, opts.limits);
  } catch (e) {
    tt.ok(e instanceof LiaisonError, `${name}: LiaisonError`);
    if (!(e instanceof LiaisonError)) return undefined;
    tt.equal(e.code, code, `${name}: code ${code}`);
    tt.ok(e.publicDetail?.startsWith(reason), `${name}: reason "${reason}" in "${e.publicDetail}"`);
    if (opts.pointer !== undefined) tt.equal(e.publicDetail, `${reason} at "${opts.pointer}"`, `${name}: pointer`);
    return e;
  }
  tt.fail(`${name}: expected a refusal (${reason})`);
  return undefined;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
function hasForbiddenKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasForbiddenKey);
  if (v !== null && typeof v === 'object') {
    return Object.keys(v).some((k) => FORBIDDEN.has(k) || hasForbiddenKey((v as Record<string, unknown>)[k]));
  }
  return false;
}
const notice = (stringUnit?: 'binary' | 'grapheme') =>
  fc
    .jsonValue(stringUnit === undefined ? { maxDepth: 6 } : { maxDepth: 6, stringUnit })
    .map((v) => ({ v }))
    .filter((o) => !hasForbiddenKey(o));

// ---------------------------------------------------------------- acceptance

t.test('accepts what JSON.stringify produces, equal to JSON.parse (property)', async (tt) => {
  for (const unit of [undefined, 'binary', 'grapheme'] as const) {
    fc.assert(
      fc.property(notice(unit), (o) => {
        const s = JSON.stringify(o);
        return isDeepStrictEqual(parse(s), JSON.parse(s)) && isDeepStrictEqual(parse(utf8(s)), JSON.parse(s));
      }),
      { numRuns: 300 },
    );
    tt.pass(`stringUnit ${unit ?? 'default'}: 300 runs`);
  }
});

t.test('accepts pretty-printed input (property)', async (tt) => {
  fc.assert(
    fc.property(notice('binary'), fc.constantFrom<string | number>(2, 4, '\t', ' \r'), (o, indent) => {
      const s = `\r\n\t ${JSON.stringify(o, null, indent)}\n \t\r`;
      return isDeepStrictEqual(parse(s), JSON.parse(s)) && isDeepStrictEqual(parse(utf8(s)), JSON.parse(s));
    }),
    { numRuns: 300 },
  );
  tt.pass('300 runs');
});

t.test('all whitespace kinds everywhere, literals, numbers', async (tt) => {
  const ws = ' \t\n\r';
  const s = `${ws}{${ws}"a"${ws}:${ws}[${ws}true${ws},${ws}false${ws},${ws}null${ws},${ws}{${ws}}${ws},${ws}[${ws}]${ws}]${ws},${ws}"b"${ws}:${ws}-0.5e+10${ws}}${ws}`;
  tt.strictSame(parse(s), JSON.parse(s));
  const nums = '{"n":[0,-0,1,-1,10,1234567890,0.5,-0.0,1.25e3,1E3,1e-3,1E+3,0e0,-12.34E-56,1e400]}';
  tt.strictSame(parse(nums), JSON.parse(nums));
  tt.strictSame(parse('{}'), {});
  tt.strictSame(parse('{"a":{},"b":[],"c":[[]],"d":""}'), { a: {}, b: [], c: [[]], d: '' });
  const o = parse('{"a":1}') as object;
  tt.equal(Object.getPrototypeOf(o), Object.prototype);
  tt.strictSame(parse(Buffer.from('{"a":1}')), { a: 1 }, 'a Buffer is a Uint8Array');
});

t.test('Arabic, Thai, Vietnamese, emoji and escapes round-trip exactly', async (tt) => {
  const strings = [
    'محمد بن علي الحسيني',
    'مرحبا بالعالم\u200f',
    'สมชาย ใจดี กรุงเทพมหานคร',
    'Nguyễn Văn Anh, Thành phố Hồ Chí Minh',
    'Nguye\u0302\u0303n (decomposed)',
    '🚐👮🏽‍♀️🇻🇳🇹🇭 family: 👨‍👩‍👧‍👦',
    'quote " backslash \\ slash / controls \b\f\n\r\t \u0000 \u001f del \u007f',
    '\u2028\u2029 line separators, \ufeff zwnbsp inside',
    '\ud83d\ude00 astral, \uffff, \ue000',
  ];
  // (Messages name the index: U+2028 in a TAP message would break the TAP stream.)
  strings.forEach((s, i) => {
    const obj = { [s]: s, list: [s, { k: s }] };
    const text = JSON.stringify(obj);
    tt.strictSame(parse(text), obj, `text #${i}`);
    tt.strictSame(parse(utf8(text)), obj, `bytes #${i}`);
  });
  // Every escape form, both cases of hex, escaped astral pair, decoded exactly.
  const escaped =
    '{"e":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u00E9\\u0000\\uD83D\\uDE00\\ud83c\\udff3","\\u0645\\u062d":"\\u0e2a"}';
  tt.strictSame(parse(escaped), { e: '"\\/\b\f\n\r\té\u00e9\u0000😀\ud83c\udff3', مح: 'ส' });
  tt.strictSame(parse(escaped), JSON.parse(escaped));
  // Raw (unescaped) astral characters and a raw pair in a JS string input.
  tt.strictSame(parse('{"😀":"\ud83d\ude00"}'), { '😀': '😀' });
});

// ------------------------------------------------------------ input handling

t.test('limits are validated (programmer error, not input error)', async (tt) => {
  tt.throws(() => parseStrictJson('{}', { maxBytes: Number.NaN, maxDepth: 1 }), RangeError);
  tt.throws(() => parseStrictJson('{}', { maxBytes: 10, maxDepth: -1 }), RangeError);
  tt.throws(() => parseStrictJson('{}', { maxBytes: 10, maxDepth: 1, maxKeys: '5' as unknown as number }), RangeError);
  tt.throws(() => parseStrictJson('{}', { maxBytes: 10, maxDepth: 1, maxStringLength: -5 }), RangeError);
  tt.strictSame(
    parseStrictJson('{}', { maxBytes: Infinity, maxDepth: Infinity, maxKeys: Infinity, maxStringLength: Infinity }),
    {},
  );
});

t.test('input that is neither bytes nor text', async (tt) => {
  refuses(tt, 42 as unknown as string, 'json-invalid', 'input must be bytes or text', { name: 'number' });
  refuses(tt, null as unknown as string, 'json-invalid', 'input must be bytes or text', { name: 'null' });
});

t.test('maxBytes: too-large, counted in UTF-8 bytes', async (tt) => {
  const ascii = '{"a":"xxxx"}'; // 12 bytes
  tt.strictSame(parse(ascii, { maxBytes: 12 }), { a: 'xxxx' });
  tt.strictSame(parse(utf8(ascii), { maxBytes: 12 }), { a: 'xxxx' });
  refuses(tt, ascii, 'too-large', 'the signed payload is larger than 11 bytes', { limits: { maxBytes: 11 } });
  refuses(tt, utf8(ascii), 'too-large', 'the signed payload is larger than 11 bytes', { limits: { maxBytes: 11 } });
  const thai = '{"a":"สมชาย"}'; // 13 code units, 23 bytes
  tt.equal(utf8(thai).length, 23);
  tt.strictSame(parse(thai, { maxBytes: 23 }), { a: 'สมชาย' });
  refuses(tt, thai, 'too-large', 'the signed payload is larger than', { limits: { maxBytes: 22 } });
  refuses(tt, utf8(thai), 'too-large', 'the signed payload is larger than', { limits: { maxBytes: 22 } });
  const e = refuses(tt, '{"a":"SECRET-MARKER"}', 'too-large', 'the signed payload', { limits: { maxBytes: 5 } });
  tt.equal(e?.status, 413);
});

t.test('UTF-8 and BOM', async (tt) => {
  refuses(tt, Uint8Array.of(0xc3, 0x28), 'json-invalid', 'input is not valid UTF-8');
  refuses(
    tt,
    Uint8Array.of(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d),
    'json-invalid',
    'input is not valid UTF-8',
    { name: 'bad byte in string' },
  );
  refuses(tt, Uint8Array.of(0x7b, 0x7d, 0xff), 'json-invalid', 'input is not valid UTF-8', { name: 'trailing 0xff' });
  refuses(tt, Uint8Array.of(0xed, 0xa0, 0x80), 'json-invalid', 'input is not valid UTF-8', { name: 'CESU surrogate' });
  refuses(tt, Uint8Array.of(0xc0, 0xaf), 'json-invalid', 'input is not valid UTF-8', { name: 'overlong' });
  refuses(tt, Uint8Array.of(0xef, 0xbb, 0xbf), 'json-invalid', 'input starts with a byte order mark', {
    name: 'lone BOM bytes',
  });
  refuses(tt, Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d), 'json-invalid', 'input starts with a byte order mark', {
    name: 'BOM bytes + {}',
  });
  refuses(tt, '\ufeff', 'json-invalid', 'input starts with a byte order mark');
  refuses(tt, '\ufeff{}', 'json-invalid', 'input starts with a byte order mark');
  // A BOM anywhere else is just a character (inside strings) or a syntax error.
  tt.strictSame(parse('{"a":"\ufeff"}'), { a: '\ufeff' });
  refuses(tt, ' \ufeff{}', 'json-invalid', 'top-level value must be an object');
  refuses(tt, '{}\ufeff', 'json-invalid', 'trailing characters after the top-level value');
});

// -------------------------------------------------------------- grammar

t.test('top level must be an object', async (tt) => {
  for (const s of ['[]', '[{}]', '"x"', '1', '-1', 'true', 'null', 'x', ' []', '}']) {
    refuses(tt, s, 'json-invalid', 'top-level value must be an object', { pointer: '' });
  }
  for (const s of ['', '   ', '\n\t\r ']) refuses(tt, s, 'json-invalid', 'unexpected end of input', { pointer: '' });
});

t.test('syntax errors (RFC 8259 exactly)', async (tt) => {
  const cases: [string, string, string?][] = [
    ['{', 'unexpected end of input', ''],
    ['{"a"', 'unexpected end of input', '/a'],
    ['{"a":', 'unexpected end of input', '/a'],
    ['{"a":1', 'unexpected end of input', '/a'],
    ['{"a":[', 'unexpected end of input', '/a/0'],
    ['{"a":[1', 'unexpected end of input', '/a/0'],
    ['{"a":[1,', 'unexpected end of input', '/a/1'],
    ['{"a":1,', 'unexpected end of input', ''],
    ['{"a', 'unexpected end of input', ''],
    ['{"a":"abc', 'unexpected end of input', '/a'],
    ['{"a":"\\', 'invalid escape sequence', '/a'],
    ['{"a":1,}', 'expected a string key', ''],
    ['{"a":[1,]}', 'unexpected character', '/a/1'],
    ['{"a":[,1]}', 'unexpected character', '/a/0'],
    ['{,}', 'expected a string key', ''],
    ['{a:1}', 'expected a string key', ''],
    ["{'a':1}", 'expected a string key', ''],
    ['{"a":\'x\'}', 'unexpected character', '/a'],
    ['{"a" 1}', 'expected ":"', '/a'],
    ['{"a"=1}', 'expected ":"', '/a'],
    ['{"a":1 "b":2}', 'unexpected character', '/a'],
    ['{"a":1;"b":2}', 'unexpected character', '/a'],
    ['{"a":[1 2]}', 'unexpected character', '/a/0'],
    ['{"a":[1}', 'unexpected character', '/a/0'],
    ['{"a":{]}', 'expected a string key', '/a'],
    ['{"a":1]', 'unexpected character', '/a'],
    ['{"a":1}}', 'trailing characters after the top-level value', ''],
    ['{"a":1}x', 'trailing characters after the top-level value', ''],
    ['{"a":1} {}', 'trailing characters after the top-level value', ''],
    ['{"a":1}\u0000', 'trailing characters after the top-level value', ''],
    ['{} // comment', 'trailing characters after the top-level value', ''],
    ['{/* c */"a":1}', 'expected a string key', ''],
    ['{"a":1 /* c */}', 'unexpected character', '/a'],
    ['{"a":NaN}', 'unexpected character', '/a'],
    ['{"a":Infinity}', 'unexpected character', '/a'],
    ['{"a":-Infinity}', 'invalid number', '/a'],
    ['{"a":undefined}', 'unexpected character', '/a'],
    ['{"a":tru}', 'unexpected character', '/a'],
    ['{"a":True}', 'unexpected character', '/a'],
    ['{"a":fals}', 'unexpected character', '/a'],
    ['{"a":nul}', 'unexpected character', '/a'],
    ['{"a":nulll}', 'unexpected character', '/a'],
    ['{"a":truefalse}', 'unexpected character', '/a'],
    ['{"a":01}', 'invalid number', '/a'],
    ['{"a":-01}', 'invalid number', '/a'],
    ['{"a":00}', 'invalid number', '/a'],
    ['{"a":1.}', 'invalid number', '/a'],
    ['{"a":1.e5}', 'invalid number', '/a'],
    ['{"a":.5}', 'unexpected character', '/a'],
    ['{"a":+1}', 'unexpected character', '/a'],
    ['{"a":-}', 'invalid number', '/a'],
    ['{"a":-a}', 'invalid number', '/a'],
    ['{"a":1e}', 'invalid number', '/a'],
    ['{"a":1E+}', 'invalid number', '/a'],
    ['{"a":1e-x}', 'invalid number', '/a'],
    ['{"a":0x10}', 'unexpected character', '/a'],
    ['{"a":1_000}', 'unexpected character', '/a'],
    ['{"a":1', 'unexpected end of input', '/a'],
    ['{"a":"\\x41"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\a"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\\'"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\U0041"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\u004"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\u004G"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\u00@0"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\u{41}"}', 'invalid escape sequence', '/a'],
    ['{"a":"\\u', 'invalid escape sequence', '/a'],
    ['{"a\\x":1}', 'invalid escape sequence', ''],
    ['{"a":"x\u0001y"}', 'unescaped control character in string', '/a'],
    ['{"a":"x\ny"}', 'unescaped control character in string', '/a'],
    ['{"a":"x\ty"}', 'unescaped control character in string', '/a'],
    ['{"a":"\u0000"}', 'unescaped control character in string', '/a'],
    ['{"a":"\u001f"}', 'unescaped control character in string', '/a'],
    ['{"a\u0000":1}', 'unescaped control character in string', ''],
    ['{"a":1,\u00a0"b":2}', 'expected a string key', ''],
    ['{"a":1,\u000b"b":2}', 'expected a string key', ''],
    ['{"a":1,\f"b":2}', 'expected a string key', ''],
  ];
  for (const [s, reason, pointer] of cases) {
    refuses(tt, s, 'json-invalid', reason, pointer === undefined ? {} : { pointer });
    tt.throws(() => JSON.parse(s), SyntaxError, `JSON.parse agrees that ${JSON.stringify(s)} is not JSON`);
  }
  // DEL (0x7f) and C1 controls need no escaping in JSON.
  tt.strictSame(parse('{"a":"\u007f\u0080\u009f"}'), { a: '\u007f\u0080\u009f' });
});

t.test('unpaired surrogates are refused, raw or escaped', async (tt) => {
  const bad = [
    '{"a":"\ud800"}', // raw lone high
    '{"a":"\udc00"}', // raw lone low
    '{"a":"\ude00\ud83d"}', // raw pair in the wrong order
    '{"a":"\ud800a"}', // raw high + non-surrogate
    '{"a":"\ud800\ud800"}', // raw high + raw high
    '{"a":"\\ud800"}', // escaped lone high
    '{"a":"\\udc00"}', // escaped lone low
    '{"a":"\\ud800x"}', // escaped high + plain char
    '{"a":"\\ud800\\n"}', // escaped high + simple escape
    '{"a":"\\ud800\\u0041"}', // escaped high + escaped non-surrogate
    '{"a":"\\ud800\\ud800"}', // escaped high + escaped high
    '{"a":"\\ud83d\ude00"}', // escaped high + raw low
    '{"a":"\ud83d\\ude00"}', // raw high + escaped low
    '{"\\ud800":1}', // in a key
  ];
  for (const s of bad) refuses(tt, s, 'json-invalid', 'unpaired surrogate in string');
  refuses(tt, '{"a":"\ud800', 'json-invalid', 'unexpected end of input', { pointer: '/a' });
  tt.strictSame(parse('{"a":"\\ud83d\\ude00\ud83d\ude00"}'), { a: '😀😀' });
});

// ----------------------------------------------------- keys and structure

t.test('duplicate keys, compared after decoding', async (tt) => {
  refuses(tt, '{"a":1,"a":2}', 'json-invalid', 'duplicate key', { pointer: '/a' });
  refuses(tt, '{"a":1,"\\u0061":2}', 'json-invalid', 'duplicate key', { pointer: '/a' });
  refuses(tt, '{"\\u0061":1,"a":2}', 'json-invalid', 'duplicate key', { pointer: '/a' });
  refuses(tt, '{"é":1,"\\u00e9":2}', 'json-invalid', 'duplicate key', { pointer: '/*' });
  refuses(tt, '{"😀":1,"\\ud83d\\ude00":2}', 'json-invalid', 'duplicate key', { pointer: '/*' });
  refuses(tt, '{"a/b":1,"a\\/b":2}', 'json-invalid', 'duplicate key', { pointer: '/*' });
  refuses(tt, '{"":1,"":2}', 'json-invalid', 'duplicate key', { pointer: '/*' });
  refuses(tt, '{"a":1,"b":2,"c":3,"b":4}', 'json-invalid', 'duplicate key', { pointer: '/b' });
  refuses(tt, '{"x":[{"k":1},{"k":1,"k":2}]}', 'json-invalid', 'duplicate key', { pointer: '/x/1/k' });
  refuses(tt, '{"x":{"y":{"z":[0,1,{"a":1,"a":1}]}}}', 'json-invalid', 'duplicate key', { pointer: '/x/y/z/2/a' });
  // The same key in different objects, and in sibling objects at one depth, is fine.
  const ok = '{"a":{"a":1,"b":{"a":2}},"b":[{"a":1,"b":2},{"a":3,"b":4},{}],"c":{"a":{"a":{"a":0}}}}';
  tt.strictSame(parse(ok), JSON.parse(ok));
  // Near-duplicates differ.
  const near = '{"a":1,"A":2,"a ":3," a":4,"\\u0061\\u0301":5,"á":6}';
  tt.strictSame(parse(near), JSON.parse(near));
});

t.test('forbidden keys (decoded), anywhere', async (tt) => {
  refuses(tt, '{"__proto__":{}}', 'json-invalid', 'forbidden key', { pointer: '/__proto__' });
  refuses(tt, '{"x":{"constructor":1}}', 'json-invalid', 'forbidden key', { pointer: '/x/constructor' });
  refuses(tt, '{"a":[1,{"prototype":null}]}', 'json-invalid', 'forbidden key', { pointer: '/a/1/prototype' });
  refuses(tt, '{"\\u005f_proto__":{"polluted":true}}', 'json-invalid', 'forbidden key', { pointer: '/__proto__' });
  refuses(tt, '{"\\u0063onstructor":{"prototype":{}}}', 'json-invalid', 'forbidden key', { pointer: '/constructor' });
  // Values, near-misses and other Object.prototype names are fine.
  const ok =
    '{"a":"__proto__","__proto":1,"_proto_":2,"Constructor":3,"prototypes":4,"toString":5,"hasOwnProperty":6,"b":["constructor"]}';
  tt.strictSame(parse(ok), JSON.parse(ok));
  tt.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

t.test('nesting depth: exactly at the limit and one over', async (tt) => {
  // depth n: the top-level object plus n-1 containers.
  const arrays = (n: number) => `{"a":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`;
  const objects = (n: number) => `{${'"a":{'.repeat(n - 1)}${'}'.repeat(n - 1)}}`;
  tt.strictSame(parse('{}', { maxDepth: 1 }), {});
  refuses(tt, '{"a":[]}', 'json-invalid', 'nesting too deep', { limits: { maxDepth: 1 }, pointer: '/a' });
  refuses(tt, '{"a":{}}', 'json-invalid', 'nesting too deep', { limits: { maxDepth: 1 }, pointer: '/a' });
  refuses(tt, '{}', 'json-invalid', 'nesting too deep', { limits: { maxDepth: 0 }, pointer: '' });
  for (const d of [2, 3, 10, 64]) {
    tt.strictSame(parse(arrays(d), { maxDepth: d }), JSON.parse(arrays(d)), `arrays depth ${d} at limit`);
    tt.strictSame(parse(objects(d), { maxDepth: d }), JSON.parse(objects(d)), `objects depth ${d} at limit`);
    refuses(tt, arrays(d + 1), 'json-invalid', 'nesting too deep', {
      limits: { maxDepth: d },
      pointer: '/a' + '/0'.repeat(d - 1),
    });
    refuses(tt, objects(d + 1), 'json-invalid', 'nesting too deep', {
      limits: { maxDepth: d },
      pointer: '/a'.repeat(d),
    });
  }
  // Wide but shallow is fine; depth counts open containers, not seen ones.
  const wide = `{"a":[${Array.from({ length: 500 }, () => '[[{}]]').join(',')}]}`;
  tt.strictSame(parse(wide, { maxDepth: 5 }), JSON.parse(wide));
  refuses(tt, wide, 'json-invalid', 'nesting too deep', { limits: { maxDepth: 4 }, pointer: '/a/0/0/0' });
});

t.test('100k-deep nesting: refused by the limit, and scanned without recursion', async (tt) => {
  const n = 100_000;
  const deepArrays = `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;
  const deepObjects = `${'{"a":'.repeat(n)}{}${'}'.repeat(n)}`;
  refuses(tt, deepArrays, 'json-invalid', 'nesting too deep', { limits: { maxDepth: 64 } });
  refuses(tt, deepObjects, 'json-invalid', 'nesting too deep', { limits: { maxDepth: 64 } });
  refuses(tt, '{"a":' + '['.repeat(n), 'json-invalid', 'nesting too deep', { limits: { maxDepth: 64 } });
  // With the limit out of the way the scanner itself walks the whole thing: no RangeError.
  refuses(tt, '{"a":' + '['.repeat(n), 'json-invalid', 'unexpected end of input', { limits: { maxDepth: Infinity } });
  refuses(tt, deepObjects + '}', 'json-invalid', 'trailing characters after the top-level value', {
    limits: { maxDepth: Infinity },
    pointer: '',
  });
  refuses(tt, `${'{"a":'.repeat(n)}{"k":1,"k":2}${'}'.repeat(n)}`, 'json-invalid', 'duplicate key', {
    limits: { maxDepth: Infinity },
  });
  const parsed = parse(deepArrays, { maxDepth: n + 1 }) as { a: unknown };
  let depth = 0;
  for (let v: unknown = parsed.a; Array.isArray(v); v = v[0]) depth++;
  tt.equal(depth, n);
});

t.test('maxKeys per object (default 1000)', async (tt) => {
  const obj = (n: number, prefix = 'k') => `{${Array.from({ length: n }, (_, i) => `"${prefix}${i}":${i}`).join(',')}}`;
  tt.strictSame(parse(obj(3), { maxKeys: 3 }), JSON.parse(obj(3)));
  refuses(tt, obj(4), 'json-invalid', 'too many keys in object', { limits: { maxKeys: 3 }, pointer: '' });
  refuses(tt, `{"x":[${obj(4)}]}`, 'json-invalid', 'too many keys in object', {
    limits: { maxKeys: 3 },
    pointer: '/x/0',
  });
  tt.strictSame(parse(obj(1000)), JSON.parse(obj(1000)));
  refuses(tt, obj(1001), 'json-invalid', 'too many keys in object', { pointer: '' });
  // Per object, not per document.
  const many = `{"a":${obj(3)},"b":${obj(3)},"c":[${obj(3)},${obj(3)}]}`;
  tt.strictSame(parse(many, { maxKeys: 4 }), JSON.parse(many));
  refuses(tt, '{"a":1}', 'json-invalid', 'too many keys in object', { limits: { maxKeys: 0 } });
  tt.strictSame(parse('{"a":{}}', { maxKeys: 1 }), { a: {} });
});

t.test('maxStringLength in decoded UTF-16 code units (default 1 000 000)', async (tt) => {
  const str = (body: string) => `{"s":"${body}"}`;
  tt.strictSame(parse(str('x'.repeat(5)), { maxStringLength: 5 }), { s: 'xxxxx' });
  refuses(tt, str('x'.repeat(6)), 'json-invalid', 'string too long', { limits: { maxStringLength: 5 }, pointer: '/s' });
  // Escapes count as what they decode to.
  tt.strictSame(parse(str('\\u0041'.repeat(5)), { maxStringLength: 5 }), { s: 'AAAAA' });
  tt.strictSame(parse(str('\\n\\t\\"\\\\\\/'), { maxStringLength: 5 }), { s: '\n\t"\\/' });
  refuses(tt, str('\\u0041'.repeat(6)), 'json-invalid', 'string too long', { limits: { maxStringLength: 5 } });
  // An astral character is two code units, raw or escaped.
  tt.strictSame(parse(str('😀😀'), { maxStringLength: 4 }), { s: '😀😀' });
  refuses(tt, str('😀😀'), 'json-invalid', 'string too long', { limits: { maxStringLength: 3 } });
  refuses(tt, str('\\ud83d\\ude00\\ud83d\\ude00'), 'json-invalid', 'string too long', {
    limits: { maxStringLength: 3 },
  });
  // Keys count too.
  tt.strictSame(parse('{"abcde":1}', { maxStringLength: 5 }), { abcde: 1 });
  refuses(tt, '{"abcdef":1}', 'json-invalid', 'string too long', { limits: { maxStringLength: 5 }, pointer: '' });
  tt.strictSame(parse('{"":""}', { maxStringLength: 0 }), { '': '' });
  // The default.
  tt.equal((parse(str('y'.repeat(1_000_000))) as { s: string }).s.length, 1_000_000);
  refuses(tt, str('y'.repeat(1_000_001)), 'json-invalid', 'string too long', { pointer: '/s' });
});

// ------------------------------------------------------------ public detail

t.test('publicDetail and message never carry input values', async (tt) => {
  const SECRET = 'SECRET-MARKER-7f3a9c';
  const cases: [string, Partial<StrictJsonLimits>?][] = [
    [`{"a":"${SECRET}","a":"${SECRET}"}`],
    [`{"a":"${SECRET}\u0001"}`],
    [`{"a":"${SECRET}\\q"}`],
    [`{"a":"${SECRET}\\ud800"}`],
    [`{"a":"${SECRET}`],
    [`{"a":"${SECRET}"} "${SECRET}"`],
    [`{"a":"${SECRET}" "${SECRET}"}`],
    [`{"a":["${SECRET}",${SECRET}]}`],
    [`{"a":"${SECRET}","b":0${SECRET}}`],
    [`{"a":"${SECRET}"}`, { maxStringLength: 5 }],
    [`{"a":"${SECRET}","b":{"c":"${SECRET}"}}`, { maxDepth: 1 }],
    [`{"a":"${SECRET}","b":"${SECRET}"}`, { maxKeys: 1 }],
    [`{"a":"${SECRET}"}`, { maxBytes: 10 }],
    [`["${SECRET}"]`],
    [`"${SECRET}"`],
    [`{"${SECRET} é":{"x":1,"x":2}}`], // a key that is not a plain field name is not shown
    [`{"${SECRET}/~":[{"__proto__":1}]}`],
  ];
  for (const [s, limits] of cases) {
    for (const input of [s, utf8(s)]) {
      try {
        parse(input, limits);
        tt.fail(`expected a refusal: ${s}`);
      } catch (e) {
        tt.ok(e instanceof LiaisonError, 'LiaisonError');
        const le = e as LiaisonError;
        tt.ok(le.code === 'json-invalid' || le.code === 'too-large', `code ${le.code}`);
        tt.notOk(le.publicDetail?.includes('SECRET'), `publicDetail "${le.publicDetail}" free of input values`);
        tt.notOk(le.message.includes('SECRET'), `message "${le.message}" free of input values`);
        tt.notOk(le.title.includes('SECRET'));
      }
    }
  }
  const e = refuses(tt, `{"${SECRET} é":{"x":1,"x":2}}`, 'json-invalid', 'duplicate key', { pointer: '/*/x' });
  tt.match(e?.message, /^strict-json: duplicate key at "\/\*\/x" \(offset \d+\)$/);
  tt.equal(e?.status, 400);
  refuses(tt, '{"a~b":{"c/d":[{"k":1,"k":1}]}}', 'json-invalid', 'duplicate key', { pointer: '/*/*/0/k' });
  refuses(tt, `{"${'x'.repeat(65)}":{"k":1,"k":1}}`, 'json-invalid', 'duplicate key', { pointer: '/*/k' });
  refuses(tt, `{"${'x'.repeat(64)}":{"k":1,"k":1}}`, 'json-invalid', 'duplicate key', {
    pointer: `/${'x'.repeat(64)}/k`,
  });
  refuses(tt, '{"Field_1.x-y":{"k":1,"k":1}}', 'json-invalid', 'duplicate key', { pointer: '/Field_1.x-y/k' });
});

// ---------------------------------------------------------------- fuzzing

const ALLOWED_EXTRA_REASONS = [
  'duplicate key',
  'forbidden key',
  'nesting too deep',
  'too many keys in object',
  'string too long',
  'top-level value must be an object',
  'unpaired surrogate in string',
  'input starts with a byte order mark',
];
const FUZZ_LIMITS: Partial<StrictJsonLimits> = { maxDepth: 8, maxKeys: 20, maxStringLength: 40 };

/**
 * The differential oracle: strict either equals JSON.parse or refuses with a
 * LiaisonError, and when JSON.parse accepts the text, only for a reason beyond
 * syntax. Throws (so fast-check shrinks and reports the counterexample).
 */
function checkAgainstJsonParse(input: Uint8Array | string): 'accepted' | 'refused' {
  let text: string | undefined;
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
  } catch {
    text = undefined;
  }
  let expected: unknown;
  let jsonOk = false;
  if (text !== undefined) {
    try {
      expected = JSON.parse(text);
      jsonOk = true;
    } catch {
      jsonOk = false;
    }
  }
  let got: unknown;
  try {
    got = parse(input, FUZZ_LIMITS);
  } catch (e) {
    if (!(e instanceof LiaisonError) || e.code !== 'json-invalid') throw new Error(`unexpected error ${String(e)}`);
    if (jsonOk && !ALLOWED_EXTRA_REASONS.some((r) => e.publicDetail?.startsWith(r))) {
      throw new Error(`refused valid JSON for a syntax reason: ${e.publicDetail}`);
    }
    return 'refused';
  }
  if (!jsonOk) throw new Error('accepted what JSON.parse refuses');
  if (!isDeepStrictEqual(got, expected)) throw new Error('differs from JSON.parse');
  return 'accepted';
}

import { isDeepStrictEqual } from 'node:util';

const JSONISH = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  'u',
  '0',
  '1',
  '9',
  '-',
  '+',
  '.',
  'e',
  'E',
  ' ',
  '\n',
  '\t',
  '\r',
  '\f',
  '\u000b',
  'a',
  't',
  'r',
  'f',
  'n',
  'l',
  's',
  '/',
  '*',
  "'",
  '\u0000',
  '\u001f',
  '\u007f',
  '\ud800',
  '\udc00',
  '\ufeff',
  'é',
  'ก',
  '😀',
  'D',
  '8',
  'd',
  'c',
  '_',
  'p',
  'o',
  '__proto__',
  'constructor',
  '\\u0061',
  '\\ud83d',
  '\\ude00',
  'true',
  'null',
  '1e5',
  '"a":',
];
const mutation = fc.record({
  op: fc.constantFrom('delete', 'insert', 'replace', 'duplicate', 'swap'),
  at: fc.nat(),
  len: fc.integer({ min: 1, max: 8 }),
  piece: fc.constantFrom(...JSONISH),
});
type Mutation = { op: string; at: number; len: number; piece: string };
function mutate(s: string, muts: Mutation[]): string {
  for (const m of muts) {
    const at = m.at % (s.length + 1);
    switch (m.op) {
      case 'delete':
        s = s.slice(0, at) + s.slice(at + m.len);
        break;
      case 'insert':
        s = s.slice(0, at) + m.piece + s.slice(at);
        break;
      case 'replace':
        s = s.slice(0, at) + m.piece + s.slice(at + 1);
        break;
      case 'duplicate':
        s = s.slice(0, at + m.len) + s.slice(at, at + m.len) + s.slice(at + m.len);
        break;
      default: {
        const b = (at + m.len) % (s.length + 1);
        const [x, y] = at < b ? [at, b] : [b, at];
        s = s.slice(0, x) + s.slice(y) + s.slice(x, y);
      }
    }
  }
  return s;
}

t.test('fuzz: mutated JSON text either equals JSON.parse or is refused with a LiaisonError', async (tt) => {
  const seen = { accepted: 0, refused: 0 };
  fc.assert(
    fc.property(
      notice('binary'),
      fc.boolean(),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (o, pretty, muts) => {
        seen[checkAgainstJsonParse(mutate(JSON.stringify(o, null, pretty ? 1 : undefined), muts))]++;
      },
    ),
    { numRuns: 5000 },
  );
  tt.ok(
    seen.accepted > 100 && seen.refused > 1000,
    `both outcomes exercised (${seen.accepted} accepted, ${seen.refused} refused)`,
  );
});

t.test('fuzz: mutated UTF-8 bytes either equal JSON.parse or are refused with a LiaisonError', async (tt) => {
  fc.assert(
    fc.property(
      notice('binary'),
      fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }), del: fc.boolean() }), {
        minLength: 1,
        maxLength: 3,
      }),
      (o, muts) => {
        let bytes = Array.from(utf8(JSON.stringify(o)));
        for (const m of muts) {
          const at = m.at % (bytes.length + 1);
          bytes = m.del
            ? [...bytes.slice(0, at), ...bytes.slice(at + 1)]
            : [...bytes.slice(0, at), m.byte, ...bytes.slice(at)];
        }
        checkAgainstJsonParse(Uint8Array.from(bytes));
      },
    ),
    { numRuns: 3000 },
  );
  tt.pass('3000 runs');
});

t.test('fuzz: random short strings over the JSON alphabet', async (tt) => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...JSONISH), { maxLength: 30 }), (pieces) => {
      checkAgainstJsonParse(pieces.join(''));
    }),
    { numRuns: 5000 },
  );
  tt.pass('5000 runs');
  // Strings that start like an object, so the scanner gets past the first character.
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...JSONISH), { maxLength: 30 }), (pieces) => {
      checkAgainstJsonParse('{"k":' + pieces.join(''));
      checkAgainstJsonParse('{' + pieces.join('') + '}');
    }),
    { numRuns: 5000 },
  );
  tt.pass('5000 runs, object-prefixed');
});
