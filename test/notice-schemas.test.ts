import t from 'tap';
import { exportJWK, generateKeyPair } from 'jose';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkRegistryReferences,
  createNoticeValidator,
  createRegistryValidator,
  defaultSchemaDir,
  MAX_REPORTED_ERRORS,
  type SchemaViolation,
  type ValidationResult,
} from '../broker/schemas/notice-validator.js';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const schemaDir = join(repo, 'schemas');
const examplesDir = join(repo, 'docs', 'examples', 'notices');
const TYPES = [
  'document-fraud-alert',
  'modus-operandi',
  'person-alert',
  'request-for-assistance',
  'seizure-report',
  'withdrawal',
];

const validator = createNoticeValidator();

type Json = Record<string, any>;
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];
const sample = (type: string): Json => JSON.parse(readFileSync(join(examplesDir, `${type}.json`), 'utf8')) as Json;
const clone = <T>(v: T): T => structuredClone(v);

function errorsOf(result: ValidationResult): SchemaViolation[] {
  return result.ok ? [] : result.errors;
}
/** The distinct failing paths, sorted (one path may carry several messages, e.g. pattern and maxLength). */
function pathsOf(result: ValidationResult): string[] {
  return [...new Set(errorsOf(result).map((e) => e.path))].sort();
}

/** Asserts the notice fails with exactly these paths (order-insensitive). */
function failsAt(tt: TapTest, notice: unknown, paths: string[], msg: string): void {
  const result = validator.validate(notice);
  tt.equal(result.ok, false, `${msg}: rejected`);
  tt.same(pathsOf(result), [...new Set(paths)].sort(), `${msg}: paths`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

t.test('the validator knows every type at version 1.0, from the directory layout', async (tt) => {
  tt.same(
    validator.types.map((x) => `${x.type}@${x.version}`),
    TYPES.map((x) => `${x}@1.0`),
  );
  tt.ok(Object.isFrozen(validator.types));
  tt.equal(defaultSchemaDir(), schemaDir);
});

t.test('every sample notice is valid, one per type, in several scripts', async (tt) => {
  const files = readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  tt.same(
    files,
    TYPES.map((x) => `${x}.json`),
  );
  const languages = new Set<string>();
  for (const file of files) {
    const notice = JSON.parse(readFileSync(join(examplesDir, file), 'utf8')) as Json;
    tt.same(validator.validate(notice), { ok: true }, file);
    tt.equal(`${notice['type']}.json`, file, `${file} holds its own type`);
    languages.add(notice['language']);
  }
  for (const lang of ['ar', 'vi', 'th']) tt.ok(languages.has(lang), `a sample in ${lang}`);
  // Arabic, Vietnamese (with diacritics) and Thai script really are in the samples.
  tt.match(sample('person-alert')['summary'], /[\u0600-\u06ff]/);
  tt.match(sample('seizure-report')['summary'], /[ạảãầấậẫẩằắặẵẳềếệễểịỉọỏồốộỗổờớợỡởụủừứựữửỳỵỷỹđ]/);
  tt.match(sample('modus-operandi')['summary'], /[\u0e00-\u0e7f]/);
});

t.test('header failures point at the failing member', async (tt) => {
  const base = sample('seizure-report');
  const v = (mutate: (n: Json) => void): Json => {
    const n = clone(base);
    mutate(n);
    return n;
  };

  failsAt(
    tt,
    v((n) => (n['id'] = 'not-a-uuid')),
    ['/id'],
    'bad uuid',
  );
  failsAt(
    tt,
    v((n) => (n['id'] = String(n['id']).toUpperCase())),
    ['/id'],
    'upper-case uuid',
  );
  failsAt(
    tt,
    v((n) => (n['id'] = `urn:uuid:${n['id']}`)),
    ['/id'],
    'urn:uuid: prefix',
  );
  failsAt(
    tt,
    v((n) => (n['tlp'] = 'WHITE')),
    ['/tlp'],
    'unknown tlp (TLP 1.0 WHITE)',
  );
  failsAt(
    tt,
    v((n) => (n['priority'] = 'critical')),
    ['/priority'],
    'unknown priority',
  );
  failsAt(
    tt,
    v((n) => (n['classification'] = 'secret')),
    ['/classification'],
    'extra header property',
  );
  failsAt(
    tt,
    v((n) => (n['origin'].country = 'vn')),
    ['/origin/country'],
    'lower-case country',
  );
  failsAt(
    tt,
    v((n) => (n['origin'].country = 'VNM')),
    ['/origin/country'],
    'alpha-3 country',
  );
  failsAt(
    tt,
    v((n) => (n['origin'].agency = 'VN Customs')),
    ['/origin/agency'],
    'agency not a slug',
  );
  failsAt(
    tt,
    v((n) => delete n['origin'].agency),
    ['/origin/agency'],
    'origin without agency',
  );
  failsAt(
    tt,
    v((n) => (n['operation'] = 'mekong-dragon-')),
    ['/operation'],
    'operation slug ends with -',
  );
  failsAt(
    tt,
    v((n) => (n['addressees'] = [])),
    ['/addressees'],
    'addressees empty',
  );
  failsAt(
    tt,
    v((n) => (n['addressees'] = ['*', 'VN'])),
    ['/addressees'],
    '* with others',
  );
  failsAt(
    tt,
    v((n) => (n['addressees'] = ['VN', 'VN'])),
    ['/addressees'],
    'duplicate addressee',
  );
  failsAt(
    tt,
    v((n) => (n['addressees'] = ['VN', 'Viet Nam'])),
    ['/addressees/1'],
    'bad addressee',
  );
  failsAt(
    tt,
    v((n) => (n['addressees'] = Array.from({ length: 201 }, (_, i) => `agency-${i}`))),
    ['/addressees'],
    '201 addressees',
  );
  failsAt(
    tt,
    v((n) => (n['type'] = 'wildlife-report')),
    ['/type'],
    'unknown type',
  );
  failsAt(
    tt,
    v((n) => (n['schema_version'] = '2.0')),
    ['/schema_version'],
    'unknown version',
  );
  failsAt(
    tt,
    v((n) => (n['schema_version'] = '1')),
    ['/schema_version'],
    'version not major.minor',
  );
  failsAt(
    tt,
    v((n) => (n['schema_version'] = 1.0)),
    ['/schema_version'],
    'version as a number',
  );
  failsAt(
    tt,
    v((n) => (n['created_at'] = '2024-06-14 03:20:00Z')),
    ['/created_at'],
    'space instead of T',
  );
  failsAt(
    tt,
    v((n) => (n['created_at'] = '2024-06-14T03:20:00')),
    ['/created_at'],
    'no offset',
  );
  failsAt(
    tt,
    v((n) => (n['created_at'] = '2024-02-30T03:20:00Z')),
    ['/created_at'],
    'no such day',
  );
  failsAt(
    tt,
    v((n) => (n['created_at'] = '2016-12-31T23:59:60Z')),
    ['/created_at'],
    'leap second',
  );
  failsAt(
    tt,
    v((n) => (n['expires_at'] = '2024-06-14')),
    ['/expires_at'],
    'expires_at a date only',
  );
  failsAt(
    tt,
    v((n) => (n['expires_at'] = '2024-06-14T02:00:00Z')),
    ['/expires_at'],
    'expires before created',
  );
  failsAt(
    tt,
    v((n) => (n['language'] = 'Vietnamese')),
    ['/language'],
    'language not BCP 47',
  );
  failsAt(
    tt,
    v((n) => (n['summary'] = '')),
    ['/summary'],
    'empty summary',
  );
  failsAt(
    tt,
    v((n) => (n['summary'] = ' \n\t ')),
    ['/summary'],
    'blank summary',
  );
  failsAt(
    tt,
    v((n) => (n['summary'] = 'x'.repeat(2001))),
    ['/summary'],
    'summary too long',
  );
  failsAt(
    tt,
    v((n) => (n['evaluation'] = { source_reliability: 'G', information_credibility: 7 })),
    ['/evaluation/source_reliability', '/evaluation/information_credibility'],
    'evaluation out of range',
  );
  failsAt(
    tt,
    v((n) => (n['evaluation'].information_credibility = 2.5)),
    ['/evaluation/information_credibility'],
    'credibility not integer',
  );
  failsAt(
    tt,
    v((n) => (n['handling_code'] = 'H4')),
    ['/handling_code'],
    'unknown handling code',
  );
  failsAt(
    tt,
    v((n) => (n['references'] = ['b75ffbf0-ecef-489e-9129-197b1d3e628A'])),
    ['/references/0'],
    'bad reference',
  );
  failsAt(
    tt,
    v((n) => (n['references'] = [n['id']])),
    ['/references/0'],
    'reference to itself',
  );
  failsAt(
    tt,
    v((n) => (n['body'] = [])),
    ['/body'],
    'body an array',
  );
  failsAt(
    tt,
    v((n) => delete n['body']),
    ['/body'],
    'no body',
  );
  failsAt(tt, 'a string', [''], 'not an object');
  failsAt(tt, null, [''], 'null');

  // Accepted variants.
  for (const language of ['ar', 'vi', 'th', 'km', 'zh-Hans', 'zh-Hant-TW', 'en-GB', 'fr', 'es-419', 'sl-rozaj']) {
    tt.ok(validator.validate(v((n) => (n['language'] = language))).ok, `language ${language}`);
  }
  tt.ok(validator.validate(v((n) => (n['addressees'] = ['*']))).ok, 'addressees ["*"]');
  tt.ok(validator.validate(v((n) => (n['created_at'] = '2024-06-14T10:20:00.123456+07:00'))).ok, 'fraction and offset');
  tt.ok(validator.validate(v((n) => (n['references'] = []))).ok, 'empty references');
});

t.test('an unknown version of a known type is reported at /schema_version only', async (tt) => {
  const n = sample('person-alert');
  n['schema_version'] = '1.1';
  n['body'] = { anything: true };
  tt.same(validator.validate(n), {
    ok: false,
    errors: [{ path: '/schema_version', message: 'is not a supported version of this notice type' }],
  });
});

t.test('seizure-report bodies', async (tt) => {
  const wildlife = sample('seizure-report');
  const w = (mutate: (b: Json) => void): Json => {
    const n = clone(wildlife);
    mutate(n['body']);
    return n;
  };
  const drugs = (items: Json[]): Json =>
    w((b) => {
      b['category'] = 'drugs';
      b['items'] = items;
    });
  const cash = (items: Json[]): Json =>
    w((b) => {
      b['category'] = 'cash';
      b['items'] = items;
    });

  // A wildlife item needs species, appendix and specimen; errors name exactly what is missing.
  tt.same(
    validator.validate(w((b) => delete b['items'][0].species)),
    { ok: false, errors: [{ path: '/body/items/0/species', message: 'is required' }] },
    'missing species on a wildlife item',
  );
  failsAt(
    tt,
    w((b) => (b['items'][1].cites_appendix = 'IV')),
    ['/body/items/1/cites_appendix'],
    'bad CITES appendix',
  );
  failsAt(
    tt,
    w((b) => (b['items'][1].cites_appendix = 1)),
    ['/body/items/1/cites_appendix'],
    'CITES appendix as a number',
  );
  failsAt(
    tt,
    w((b) => delete b['items'][0].specimen),
    ['/body/items/0/specimen'],
    'missing specimen',
  );
  failsAt(
    tt,
    w((b) => (b['items'][0].species = 'pangolin')),
    ['/body/items/0/species'],
    'species not a scientific name',
  );
  failsAt(
    tt,
    w((b) => (b['items'][0].substance = 'heroin')),
    ['/body/items/0/substance'],
    'drug field on a wildlife item',
  );
  tt.ok(validator.validate(w((b) => (b['items'][0].species = 'Dalbergia spp.'))).ok, 'genus spp.');
  tt.ok(validator.validate(w((b) => (b['items'][0].species = 'Ceratotherium simum simum'))).ok, 'subspecies');

  // Quantity: never coerced.
  failsAt(
    tt,
    w((b) => (b['items'][0].quantity.value = '12')),
    ['/body/items/0/quantity/value'],
    'quantity "12" as a string',
  );
  failsAt(
    tt,
    w((b) => (b['items'][0].quantity.value = 0)),
    ['/body/items/0/quantity/value'],
    'quantity 0',
  );
  failsAt(
    tt,
    w((b) => (b['items'][0].quantity.unit = 'lbs')),
    ['/body/items/0/quantity/unit'],
    'unknown unit',
  );
  failsAt(
    tt,
    w((b) => delete b['items'][0].quantity),
    ['/body/items/0/quantity'],
    'no quantity',
  );

  // Items, places, conveyance.
  failsAt(
    tt,
    w((b) => (b['items'] = [])),
    ['/body/items'],
    'no items',
  );
  failsAt(
    tt,
    w((b) => (b['items'] = Array.from({ length: 101 }, () => b['items'][0]))),
    ['/body/items'],
    '101 items',
  );
  failsAt(
    tt,
    w((b) => (b['category'] = 'timber')),
    ['/body/category'],
    'unknown category',
  );
  failsAt(
    tt,
    w((b) => (b['location'].port_code = 'HAIPHONG')),
    ['/body/location/port_code'],
    'bad port code',
  );
  tt.ok(validator.validate(w((b) => (b['location'].port_code = 'HAN'))).ok, 'IATA code');
  tt.ok(validator.validate(w((b) => (b['location'].port_code = 'VN HPH'))).ok, 'UN/LOCODE with a space');
  failsAt(
    tt,
    w((b) => (b['conveyance'].mode = 'boat')),
    ['/body/conveyance/mode'],
    'unknown conveyance mode',
  );
  failsAt(
    tt,
    w((b) => (b['route'].countries = [])),
    ['/body/route/countries'],
    'empty route',
  );
  failsAt(
    tt,
    w((b) => (b['route'].countries = ['NG', 'MYS'])),
    ['/body/route/countries/1'],
    'bad route country',
  );
  failsAt(
    tt,
    w((b) => (b['concealment'].method = 'magic')),
    ['/body/concealment/method'],
    'unknown concealment',
  );
  failsAt(
    tt,
    w((b) => (b['persons_detained'] = -1)),
    ['/body/persons_detained'],
    'negative detainees',
  );
  failsAt(
    tt,
    w((b) => (b['persons_detained'] = 1.5)),
    ['/body/persons_detained'],
    'fractional detainees',
  );
  failsAt(
    tt,
    w((b) => (b['seized_at'] = 'yesterday')),
    ['/body/seized_at'],
    'bad seized_at',
  );
  failsAt(
    tt,
    w((b) => (b['case_reference'] = '')),
    ['/body/case_reference'],
    'empty case reference',
  );

  // Drugs.
  const meth = {
    description: 'Crystal methamphetamine in tea packages',
    quantity: { value: 48.5, unit: 'kg' },
    substance: 'methamphetamine',
    form: 'crystal',
    purity_percent: 78,
  };
  tt.ok(validator.validate(drugs([meth])).ok, 'a drug seizure');
  tt.ok(
    validator.validate(
      drugs([
        {
          description: 'Ephedrine',
          quantity: { value: 3, unit: 't' },
          substance: 'precursor',
          substance_name: 'ephedrine',
        },
      ]),
    ).ok,
    'a named precursor',
  );
  failsAt(
    tt,
    drugs([{ description: 'P2P drums', quantity: { value: 20, unit: 'l' }, substance: 'precursor' }]),
    ['/body/items/0/substance_name'],
    'precursor without a name',
  );
  failsAt(tt, drugs([{ ...meth, substance: 'sugar' }]), ['/body/items/0/substance'], 'unknown substance');
  failsAt(tt, drugs([{ ...meth, purity_percent: 120 }]), ['/body/items/0/purity_percent'], 'purity over 100');
  failsAt(
    tt,
    drugs([wildlife['body'].items[0]]),
    [
      '/body/items/0/substance',
      '/body/items/0/species',
      '/body/items/0/common_name',
      '/body/items/0/cites_appendix',
      '/body/items/0/specimen',
    ],
    'a wildlife item in a drug seizure',
  );

  // Cash.
  const usd = {
    description: 'USD 100 banknotes in vacuum bags',
    quantity: { value: 1500, unit: 'pieces' },
    currency: 'USD',
    amount: 150000,
  };
  tt.ok(validator.validate(cash([usd])).ok, 'a cash seizure');
  const { currency: _c, ...noCurrency } = usd;
  failsAt(tt, cash([noCurrency]), ['/body/items/0/currency'], 'cash without currency');
  const { amount: _a, ...noAmount } = usd;
  failsAt(tt, cash([noAmount]), ['/body/items/0/amount'], 'cash without amount');
  failsAt(tt, cash([{ ...usd, currency: 'usd' }]), ['/body/items/0/currency'], 'lower-case currency');

  // Other.
  const other = { description: 'Cigarettes', quantity: { value: 40, unit: 'containers' }, hs_code: '240220' };
  tt.ok(validator.validate(w((b) => ((b['category'] = 'other'), (b['items'] = [other])))).ok, 'other goods');
  failsAt(
    tt,
    w((b) => ((b['category'] = 'other'), (b['items'] = [{ ...other, hs_code: '24' }]))),
    ['/body/items/0/hs_code'],
    'short HS code',
  );
});

t.test('person-alert bodies', async (tt) => {
  const p = (mutate: (b: Json) => void): Json => {
    const n = sample('person-alert');
    mutate(n['body']);
    return n;
  };
  failsAt(
    tt,
    p((b) => delete b['person'].family_name),
    ['/body/person/family_name'],
    'no family name',
  );
  failsAt(
    tt,
    p((b) => (b['person'].date_of_birth = '1988-02-30')),
    ['/body/person/date_of_birth'],
    'no such date',
  );
  failsAt(
    tt,
    p((b) => (b['person'].date_of_birth = '14/03/1988')),
    ['/body/person/date_of_birth'],
    'date not ISO',
  );
  failsAt(
    tt,
    p((b) => (b['person'].sex = 'M')),
    ['/body/person/sex'],
    'unknown sex value',
  );
  failsAt(
    tt,
    p((b) => (b['person'].nationalities = ['IRQ'])),
    ['/body/person/nationalities/0'],
    'alpha-3 nationality',
  );
  failsAt(
    tt,
    p((b) => (b['alert_kind'] = 'suspect')),
    ['/body/alert_kind'],
    'unknown alert kind',
  );
  failsAt(
    tt,
    p((b) => (b['interpol_notice'].colour = 'pink')),
    ['/body/interpol_notice/colour'],
    'unknown notice colour',
  );
  failsAt(
    tt,
    p((b) => (b['documents'][0].kind = 'laissez-passer')),
    ['/body/documents/0/kind'],
    'unknown document kind',
  );
  failsAt(
    tt,
    p((b) => (b['documents'][0].number = 'A1 <script>')),
    ['/body/documents/0/number'],
    'bad document number',
  );
  failsAt(
    tt,
    p((b) => (b['risk'] = { armed: 'no' })),
    ['/body/risk/armed', '/body/risk/violent'],
    'risk flags',
  );
  failsAt(
    tt,
    p((b) => delete b['action_requested']),
    ['/body/action_requested'],
    'no action requested',
  );
  tt.ok(
    validator.validate(p((b) => ((b['alert_kind'] = 'victim'), delete b['interpol_notice'], delete b['documents']))).ok,
    'a victim alert',
  );
});

t.test('modus-operandi bodies', async (tt) => {
  const m = (mutate: (b: Json) => void): Json => {
    const n = sample('modus-operandi');
    mutate(n['body']);
    return n;
  };
  failsAt(
    tt,
    m((b) => (b['crime_area'] = 'smuggling')),
    ['/body/crime_area'],
    'unknown crime area',
  );
  failsAt(
    tt,
    m((b) => (b['description'] = 'ก'.repeat(20001))),
    ['/body/description'],
    'description over 20000',
  );
  tt.ok(
    validator.validate(m((b) => (b['description'] = 'ก'.repeat(20000)))).ok,
    'description of 20000 Thai characters',
  );
  failsAt(
    tt,
    m((b) => (b['indicators'] = [])),
    ['/body/indicators'],
    'no indicators',
  );
  failsAt(
    tt,
    m((b) => (b['routes'][1].countries = [])),
    ['/body/routes/1/countries'],
    'empty route',
  );
  failsAt(
    tt,
    m((b) => (b['first_observed'] = '2024-01')),
    ['/body/first_observed'],
    'partial date',
  );
});

t.test('request-for-assistance bodies', async (tt) => {
  const r = (mutate: (b: Json) => void): Json => {
    const n = sample('request-for-assistance');
    mutate(n['body']);
    return n;
  };
  failsAt(
    tt,
    r((b) => (b['contact'].email = 'liaison desk at adp')),
    ['/body/contact/email'],
    'bad email',
  );
  failsAt(
    tt,
    r((b) => (b['contact'].phone = '023 720 000')),
    ['/body/contact/phone'],
    'phone without +',
  );
  failsAt(
    tt,
    r((b) => delete b['contact']),
    ['/body/contact'],
    'no contact',
  );
  failsAt(
    tt,
    r((b) => (b['respond_by'] = '2024-07-18')),
    ['/body/respond_by'],
    'respond_by a date only',
  );
  failsAt(
    tt,
    r((b) => (b['request_kind'] = 'arrest')),
    ['/body/request_kind'],
    'unknown request kind',
  );
});

t.test('document-fraud-alert bodies', async (tt) => {
  const d = (mutate: (b: Json) => void): Json => {
    const n = sample('document-fraud-alert');
    mutate(n['body']);
    return n;
  };
  failsAt(
    tt,
    d((b) => (b['images'][0].sha256 = String(b['images'][0].sha256).toUpperCase())),
    ['/body/images/0/sha256'],
    'upper-case hash',
  );
  failsAt(
    tt,
    d((b) => (b['images'][1].data = 'iVBORw0KGgo=')),
    ['/body/images/1/data'],
    'no binary image data',
  );
  failsAt(
    tt,
    d((b) => (b['images'][2].media_type = 'application/pdf')),
    ['/body/images/2/media_type'],
    'not an image type',
  );
  failsAt(
    tt,
    d((b) => (b['fraud_type'] = 'fake')),
    ['/body/fraud_type'],
    'unknown fraud type',
  );
  failsAt(
    tt,
    d((b) => (b['features'] = [])),
    ['/body/features'],
    'no features',
  );
  failsAt(
    tt,
    d((b) => (b['document'].issuing_country = 'Italy')),
    ['/body/document/issuing_country'],
    'bad issuing country',
  );
  failsAt(
    tt,
    d((b) => (b['detected_at'] = { country: 'FR' })),
    ['/body/detected_at/place'],
    'detected_at without place',
  );
});

t.test('validation never changes the notice', async (tt) => {
  for (const type of TYPES) {
    const notice = sample(type);
    const before = clone(notice);
    tt.ok(validator.validate(notice).ok);
    tt.same(notice, before, `${type}: unchanged after a valid run`);
  }

  const bad = sample('seizure-report');
  bad['unknown_member'] = { nested: [1, 2, 3] };
  bad['body'].items[0].quantity.value = '12';
  bad['body'].items[0].extra = 'kept';
  const before = clone(bad);
  const first = validator.validate(bad);
  tt.equal(first.ok, false);
  tt.same(bad, before, 'unchanged after an invalid run');
  tt.equal(bad['body'].items[0].quantity.value, '12', '"12" not coerced to 12');
  tt.ok('unknown_member' in bad, 'unknown property not removed');
  tt.equal(bad['body'].items[0].extra, 'kept');

  // Header-valid notice with a bad body: the unknown item property is an error, not silently dropped.
  const bodyOnly = sample('seizure-report');
  bodyOnly['body'].items[0].extra = 'kept';
  failsAt(tt, bodyOnly, ['/body/items/0/extra'], 'unknown body property is an error');
  tt.equal(bodyOnly['body'].items[0].extra, 'kept');

  // A deeply frozen notice validates without a TypeError: nothing tries to write.
  for (const notice of [deepFreeze(sample('person-alert')), deepFreeze(clone(before))]) {
    tt.doesNotThrow(() => validator.validate(notice));
  }
  tt.same(validator.validate(deepFreeze(sample('document-fraud-alert'))), { ok: true });
  // Same answer twice (no state kept between calls).
  tt.same(validator.validate(bad), first);
});

t.test('messages never echo data values; errors are capped', async (tt) => {
  const marker = 'ZZ-SECRET-VALUE-7f3a';
  const n = sample('seizure-report');
  n['tlp'] = marker;
  n['language'] = marker;
  n['operation'] = marker;
  n['addressees'] = [marker];
  n['origin'].country = marker;
  n['evaluation'].source_reliability = marker;
  n['created_at'] = marker;
  const result = validator.validate(n);
  tt.equal(result.ok, false);
  tt.ok(errorsOf(result).length >= 7);
  tt.notMatch(JSON.stringify(result), marker);

  const b = sample('seizure-report');
  b['body'].items[0].species = marker;
  b['body'].items[0].cites_appendix = marker;
  b['body'].location.country = marker;
  tt.notMatch(JSON.stringify(validator.validate(b)), marker);

  // Unknown member names: escaped as JSON Pointer tokens, or left out when long or unprintable.
  const odd = sample('seizure-report');
  odd['a/b~c'] = 1;
  odd['x'.repeat(65)] = 1;
  odd['bell\u0007'] = 1;
  odd['evaluation'][''] = 1;
  tt.same(errorsOf(validator.validate(odd)), [
    { path: '/a~1b~0c', message: 'is not allowed here' },
    { path: '', message: 'has a member that is not allowed here' },
    { path: '/evaluation', message: 'has a member that is not allowed here' },
  ]);

  const many = sample('seizure-report');
  many['body'].items = Array.from({ length: 100 }, () => ({ description: '', quantity: { value: '1', unit: 'x' } }));
  const capped = errorsOf(validator.validate(many));
  tt.equal(capped.length, MAX_REPORTED_ERRORS);
  tt.equal(new Set(capped.map((e) => `${e.path} ${e.message}`)).size, capped.length, 'no duplicate violations');
});

// ---------------------------------------------------------------------------
// Registry seed

const registryValidator = createRegistryValidator();

// Keys through jose/WebCrypto, as broker/keys/jwk.ts makes them (KeyObject.export can hang on Node 20 after X25519).
type Kind = 'ed25519' | 'x25519' | 'p256';
const KEY_PARAMS: Record<Kind, [string, { crv?: string }]> = {
  ed25519: ['EdDSA', { crv: 'Ed25519' }],
  x25519: ['ECDH-ES', { crv: 'X25519' }],
  p256: ['ES256', {}],
};
async function keyPair(kind: Kind): Promise<{ pub: Json; priv: Json }> {
  const [alg, options] = KEY_PARAMS[kind];
  const { publicKey, privateKey } = await generateKeyPair(alg, { ...options, extractable: true });
  return { pub: await exportJWK(publicKey), priv: await exportJWK(privateKey) };
}
// A small pool, made once: the seeds below copy from it.
const POOL: Record<Kind, Json[]> = { ed25519: [], x25519: [], p256: [] };
let poolNext = 0;
t.before(async () => {
  for (const kind of Object.keys(POOL) as Kind[]) {
    for (let i = 0; i < 12; i++) POOL[kind].push((await keyPair(kind)).pub);
  }
});
function publicJwk(kind: Kind): Json {
  return clone(POOL[kind][poolNext++ % 12] as Json);
}

const DEMO_AGENCIES: [string, string, string][] = [
  ['vn-customs', 'VN', 'General Department of Vietnam Customs'],
  ['vn-c04', 'VN', 'Ministry of Public Security, Drug Crime Investigation Police Department (C04)'],
  ['th-customs', 'TH', 'Thai Customs Department'],
  ['kh-police-adp', 'KH', 'Anti-Drug Police Department, General Commissariat of National Police'],
  ['la-customs', 'LA', 'Lao Customs Department'],
  ['cn-customs', 'CN', 'General Administration of Customs of China'],
  ['gb-border-force', 'GB', 'UK Border Force'],
  ['fr-douane', 'FR', 'Direction générale des douanes et droits indirects'],
  ['iq-police', 'IQ', 'Iraqi Police'],
];

function demoSeed(): Json {
  return {
    $schema: '../../schemas/registry.schema.json',
    agencies: DEMO_AGENCIES.map(([id, country, name], i) => ({
      id,
      country,
      name,
      roles: id === 'gb-border-force' ? ['publish', 'subscribe', 'audit'] : ['publish', 'subscribe'],
      keys: [
        {
          kid: `${id}-sig-2024`,
          use: 'sig',
          jwk: { ...publicJwk('ed25519'), kid: `${id}-sig-2024`, alg: 'EdDSA', use: 'sig' },
          status: 'active',
          not_before: '2024-01-01T00:00:00Z',
          not_after: '2026-01-01T00:00:00Z',
        },
        {
          kid: `${id}-enc-2024`,
          use: 'enc',
          jwk: i % 2 === 0 ? { ...publicJwk('x25519'), alg: 'ECDH-ES+A256KW' } : publicJwk('p256'),
          status: 'active',
        },
        ...(id === 'vn-customs'
          ? [
              {
                kid: 'vn-customs-sig-2023',
                use: 'sig',
                jwk: publicJwk('p256'),
                status: 'revoked',
                not_before: '2023-01-01T00:00:00Z',
                revoked_at: '2024-01-15T08:00:00+07:00',
              },
            ]
          : []),
      ],
      ...(id === 'gb-border-force'
        ? { webhook: { url: 'https://intel.border-force.example/liaison/hook' }, delivery_format: 'jose' }
        : {}),
      ...(id === 'fr-douane' ? { delivery_format: 'openpgp' } : {}),
    })),
    operations: [
      {
        id: 'mekong-dragon-6',
        name: 'Mekong Dragon VI',
        status: 'active',
        members: ['vn-customs', 'vn-c04', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs'],
        categories: ['drugs', 'wildlife', 'cites', 'precursors'],
        start: '2024-03-01',
        end: '2024-12-31',
      },
      {
        id: 'aircop',
        name: 'AIRCOP',
        status: 'active',
        members: ['vn-customs', 'th-customs', 'fr-douane', 'gb-border-force'],
        categories: ['drugs', 'high-risk-travellers'],
      },
      {
        id: 'commit',
        name: 'COMMIT',
        status: 'active',
        members: ['vn-c04', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs'],
        categories: ['human-trafficking'],
      },
      { id: 'crimjust', name: 'CRIMJUST', status: 'inactive', members: [], categories: ['cocaine'] },
      {
        id: 'oic-channel',
        name: 'Organised immigration crime',
        status: 'active',
        members: ['gb-border-force', 'fr-douane', 'iq-police', 'vn-c04'],
        categories: ['migrant-smuggling', 'document-fraud'],
        start: '2024-01-01',
      },
    ],
  };
}

t.test('the registry schema accepts a realistic seed', async (tt) => {
  tt.same(registryValidator(demoSeed()), { ok: true });
  tt.same(registryValidator({ agencies: [], operations: [] }), { ok: true }, 'an empty registry');
});

t.test('the registry schema refuses private keys and malformed keys', async (tt) => {
  const rv = (mutate: (s: Json) => void): ValidationResult => {
    const s = demoSeed();
    mutate(s);
    return registryValidator(s);
  };
  const { priv } = await keyPair('ed25519');
  tt.ok('d' in priv);
  const withD = rv((s) => (s['agencies'][0].keys[0].jwk = priv));
  tt.same(
    withD,
    { ok: false, errors: [{ path: '/agencies/0/keys/0/jwk/d', message: 'is not allowed here' }] },
    'JWK with d',
  );
  for (const member of ['p', 'q', 'dp', 'dq', 'qi', 'k']) {
    tt.same(
      pathsOf(rv((s) => (s['agencies'][1].keys[1].jwk[member] = 'AAAA'))),
      [`/agencies/1/keys/1/jwk/${member}`],
      `JWK with ${member}`,
    );
  }
  tt.notMatch(JSON.stringify(withD), priv['d'], 'the private key is not echoed');
  // Several branches reject the same curve; it is reported once.
  tt.same(
    rv((s) => (s['agencies'][0].keys[0].jwk.crv = 'Ed448')),
    {
      ok: false,
      errors: [{ path: '/agencies/0/keys/0/jwk/crv', message: 'must be equal to one of the allowed values' }],
    },
    'unknown curve, reported once',
  );

  const cases: [string, (s: Json) => void, string[]][] = [
    [
      'RSA key',
      (s) => (s['agencies'][0].keys[0].jwk = { kty: 'RSA', crv: 'Ed25519', n: 'x', e: 'AQAB', x: 'A'.repeat(43) }),
      ['/agencies/0/keys/0/jwk/kty', '/agencies/0/keys/0/jwk/n', '/agencies/0/keys/0/jwk/e'],
    ],
    ['OKP key with y', (s) => (s['agencies'][0].keys[0].jwk.y = 'A'.repeat(43)), ['/agencies/0/keys/0/jwk/y']],
    ['EC key without y', (s) => delete s['agencies'][1].keys[1].jwk.y, ['/agencies/1/keys/1/jwk/y']],
    ['X25519 for signing', (s) => (s['agencies'][0].keys[0].jwk = publicJwk('x25519')), ['/agencies/0/keys/0/jwk/crv']],
    [
      'Ed25519 for encryption',
      (s) => (s['agencies'][0].keys[1].jwk = publicJwk('ed25519')),
      ['/agencies/0/keys/1/jwk/crv'],
    ],
    ['short x', (s) => (s['agencies'][0].keys[0].jwk.x = 'abc'), ['/agencies/0/keys/0/jwk/x']],
    ['bad kid', (s) => (s['agencies'][0].keys[0].kid = 'vn customs/1'), ['/agencies/0/keys/0/kid']],
    [
      'revoked without revoked_at',
      (s) => delete s['agencies'][0].keys[2].revoked_at,
      ['/agencies/0/keys/2/revoked_at'],
    ],
    ['unknown status', (s) => (s['agencies'][0].keys[0].status = 'suspended'), ['/agencies/0/keys/0/status']],
    ['empty roles', (s) => (s['agencies'][0].roles = []), ['/agencies/0/roles']],
    ['duplicate roles', (s) => (s['agencies'][0].roles = ['publish', 'publish']), ['/agencies/0/roles']],
    ['unknown role', (s) => (s['agencies'][0].roles = ['admin']), ['/agencies/0/roles/0']],
    [
      'webhook not http(s)',
      (s) => (s['agencies'][6].webhook.url = 'ftp://intel.example/hook'),
      ['/agencies/6/webhook/url'],
    ],
    ['webhook not a URI', (s) => (s['agencies'][6].webhook.url = 'https://bad host/'), ['/agencies/6/webhook/url']],
    ['bad delivery format', (s) => (s['agencies'][7].delivery_format = 'smtp'), ['/agencies/7/delivery_format']],
    ['agency country', (s) => (s['agencies'][0].country = 'VNM'), ['/agencies/0/country']],
    ['extra agency member', (s) => (s['agencies'][0].password = 'x'), ['/agencies/0/password']],
    ['operation status', (s) => (s['operations'][0].status = 'paused'), ['/operations/0/status']],
    ['operation start', (s) => (s['operations'][0].start = '2024-13-01'), ['/operations/0/start']],
    ['duplicate member', (s) => s['operations'][0].members.push('vn-customs'), ['/operations/0/members']],
    ['no operations', (s) => delete s['operations'], ['/operations']],
  ];
  for (const [name, mutate, paths] of cases) tt.same(pathsOf(rv(mutate)), [...paths].sort(), name);
});

t.test('the registry validator checks references between records', async (tt) => {
  const rv = (mutate: (s: Json) => void): ValidationResult => {
    const s = demoSeed();
    mutate(s);
    return registryValidator(s);
  };
  const cases: [string, (s: Json) => void, string[]][] = [
    ['duplicate agency', (s) => s['agencies'].push({ ...clone(s['agencies'][0]), keys: [] }), ['/agencies/9/id']],
    [
      'duplicate kid across agencies',
      (s) => (s['agencies'][1].keys[0].kid = s['agencies'][0].keys[0].kid),
      ['/agencies/1/keys/0/kid', '/agencies/1/keys/0/jwk/kid'],
    ],
    ['jwk kid differs', (s) => (s['agencies'][0].keys[0].jwk.kid = 'other'), ['/agencies/0/keys/0/jwk/kid']],
    ['jwk use differs', (s) => (s['agencies'][0].keys[0].jwk.use = 'enc'), ['/agencies/0/keys/0/jwk/use']],
    [
      'window reversed',
      (s) => (s['agencies'][0].keys[0].not_after = '2023-12-31T23:59:59Z'),
      ['/agencies/0/keys/0/not_after'],
    ],
    ['end before start', (s) => (s['operations'][0].end = '2024-02-28'), ['/operations/0/end']],
    ['duplicate operation', (s) => s['operations'].push(clone(s['operations'][2])), ['/operations/5/id']],
  ];
  for (const [name, mutate, paths] of cases) tt.same(pathsOf(rv(mutate)), [...paths].sort(), name);
});

t.test('single registry records validate alone; whole seeds also check members', async (tt) => {
  const seed = demoSeed();
  // The registry store checks each KV record wrapped alone: members need not be in the same document.
  for (const agency of seed['agencies'])
    tt.same(registryValidator({ agencies: [agency], operations: [] }), { ok: true }, agency.id);
  for (const op of seed['operations'])
    tt.same(registryValidator({ agencies: [], operations: [op] }), { ok: true }, op.id);

  tt.same(
    checkRegistryReferences(seed as Parameters<typeof checkRegistryReferences>[0]),
    { ok: true },
    'every member of the demo seed is an agency',
  );
  seed['operations'][1].members.push('us-dea');
  tt.same(checkRegistryReferences(seed as Parameters<typeof checkRegistryReferences>[0]), {
    ok: false,
    errors: [{ path: '/operations/1/members/4', message: 'is not a registered agency' }],
  });
  tt.same(registryValidator(seed), { ok: true }, 'the schema validator itself does not look across records');
});

// ---------------------------------------------------------------------------
// Loading: directory layout, fail-fast at construction

type Tree = { [name: string]: string | Tree };

function realTree(): Tree {
  const notice: Tree = {};
  for (const dir of readdirSync(join(schemaDir, 'notice'))) {
    notice[dir] = { '1.0.schema.json': readFileSync(join(schemaDir, 'notice', dir, '1.0.schema.json'), 'utf8') };
  }
  return { notice, 'registry.schema.json': readFileSync(join(schemaDir, 'registry.schema.json'), 'utf8') };
}
const dir = (tree: Tree, name: string): Tree => tree[name] as Tree;
const noticeOf = (tree: Tree): Tree => dir(tree, 'notice');
const editJson = (tree: Tree, file: string, edit: (s: Json) => void): void => {
  const s = JSON.parse(tree[file] as string) as Json;
  edit(s);
  tree[file] = JSON.stringify(s);
};

t.test('schemas are discovered from the directory layout', async (tt) => {
  const tree = realTree();
  const seizure = dir(noticeOf(tree), 'seizure-report');
  // A newer minor version of one type, plus files that are not schemas.
  seizure['1.1.schema.json'] = (seizure['1.0.schema.json'] as string)
    .replace('seizure-report:1.0', 'seizure-report:1.1')
    .replace('"persons_detained"]', '"persons_detained", "case_reference"]');
  for (const version of ['2.0', '10.0']) {
    seizure[`${version}.schema.json`] = (seizure['1.0.schema.json'] as string).replace(
      'seizure-report:1.0',
      `seizure-report:${version}`,
    );
  }
  seizure['README.md'] = '# notes';
  noticeOf(tree)['README.md'] = '# notices';
  dir(noticeOf(tree), 'header')['2.0.schema.json'] = (
    dir(noticeOf(tree), 'header')['1.0.schema.json'] as string
  ).replace('header:1.0', 'header:2.0');
  const root = tt.testdir(tree);

  const v = createNoticeValidator(root);
  tt.same(
    v.types.filter((x) => x.type === 'seizure-report').map((x) => x.version),
    ['1.0', '1.1', '2.0', '10.0'],
    'versions in numeric order',
  );
  tt.same(
    v.types.map((x) => x.type),
    [...TYPES.slice(0, 4), ...Array(4).fill('seizure-report'), ...TYPES.slice(5)],
    'types in order',
  );
  const n = sample('seizure-report');
  n['schema_version'] = '1.1';
  delete n['body'].case_reference;
  failsAt(tt, n, ['/schema_version'], 'the shared validator has no 1.1');
  tt.same(pathsOf(v.validate(n)), ['/body/case_reference'], 'dispatched to 1.1');
  n['body'].case_reference = 'X-1';
  tt.same(v.validate(n), { ok: true });
  tt.same(createRegistryValidator(root)({ agencies: [], operations: [] }), { ok: true });
});

t.test('the default schema dir is found by walking up', async (tt) => {
  const root = tt.testdir({ repo: { schemas: { notice: {} }, dist: { broker: { schemas: {} } } } });
  tt.equal(defaultSchemaDir(join(root, 'repo', 'dist', 'broker', 'schemas')), join(root, 'repo', 'schemas'));
  tt.equal(defaultSchemaDir(join(root, 'repo')), join(root, 'repo', 'schemas'));
  // Test dirs live inside the repo, so "nothing found" needs a path outside it.
  const lonely = join('/', `liaison-no-such-dir-${process.pid}`, 'a', 'b');
  tt.throws(() => defaultSchemaDir(lonely), /no schemas\/notice directory found/);
});

t.test('broken schema trees fail at construction, not on the first notice', async (tt) => {
  const broken = (
    name: string,
    change: (tree: Tree) => void,
    pattern: RegExp,
    make: (root: string) => unknown = createNoticeValidator,
  ): void => {
    const tree = realTree();
    change(tree);
    const root = tt.testdir(tree);
    tt.throws(() => make(root), pattern, name);
  };
  broken(
    'wrong $id',
    (tree) =>
      editJson(
        dir(noticeOf(tree), 'person-alert'),
        '1.0.schema.json',
        (s) => (s['$id'] = 'urn:liaison:schema:notice:person-alert:2.0'),
      ),
    /\$id must be urn:liaison:schema:notice:person-alert:1\.0/,
  );
  broken(
    'misnamed file',
    (tree) => (dir(noticeOf(tree), 'person-alert')['v1.json'] = '{}'),
    /expected <major>\.<minor>\.schema\.json/,
  );
  broken(
    'schema not an object',
    (tree) => (dir(noticeOf(tree), 'person-alert')['1.0.schema.json'] = '[]'),
    /must be a JSON object/,
  );
  broken('bad type dir name', (tree) => (noticeOf(tree)['Person_Alert'] = {}), /lower-case slug/);
  broken('no header', (tree) => delete noticeOf(tree)['header'], /header\/1\.0\.schema\.json is missing/);
  broken(
    'header without a type enum',
    (tree) => editJson(dir(noticeOf(tree), 'header'), '1.0.schema.json', (s) => delete s['properties'].type.enum),
    /properties\.type\.enum is missing/,
  );
  broken(
    'header without properties',
    (tree) =>
      editJson(dir(noticeOf(tree), 'header'), '1.0.schema.json', (s) => ((s['required'] = []), delete s['properties'])),
    /properties\.type\.enum is missing/,
  );
  broken(
    'type without a body schema',
    (tree) => delete noticeOf(tree)['modus-operandi'],
    /lists type modus-operandi but schemas\/notice has no body schema/,
  );
  broken(
    'body schema not in the header enum',
    (tree) => {
      noticeOf(tree)['firearms-trace'] = {
        '1.0.schema.json': JSON.stringify({
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          $id: 'urn:liaison:schema:notice:firearms-trace:1.0',
          type: 'object',
        }),
      };
    },
    /firearms-trace is not listed in the header's type enum/,
  );
  broken(
    'strict mode: unknown keyword',
    (tree) =>
      editJson(dir(noticeOf(tree), 'modus-operandi'), '1.0.schema.json', (s) => (s['properties'].title.maxlength = 10)),
    /strict mode: unknown keyword: "maxlength"/,
  );
  broken(
    'registry $id',
    (tree) => editJson(tree, 'registry.schema.json', (s) => (s['$id'] = 'urn:liaison:schema:registry:2')),
    /\$id must be urn:liaison:schema:registry:1/,
    createRegistryValidator,
  );
  broken('registry missing', (tree) => delete tree['registry.schema.json'], /ENOENT/, createRegistryValidator);
});

t.test('withdrawal bodies: action, the superseded id, a bounded reason, a correction when correcting', async (tt) => {
  const w = sample('withdrawal');
  tt.equal(w['body'].supersedes, sample('seizure-report')['id'], 'the sample corrects the sample seizure report');
  tt.ok(w['references'].includes(w['body'].supersedes), 'and lists it in references');
  const d = (mutate: (b: Json) => void): Json => {
    const n = clone(w);
    mutate(n['body']);
    return n;
  };
  tt.same(
    validator.validate(d((b) => ((b['action'] = 'withdraw'), delete b['correction']))),
    { ok: true },
    'a withdrawal needs no correction',
  );
  failsAt(
    tt,
    d((b) => (b['action'] = 'retract')),
    ['/body/action'],
    'unknown action',
  );
  failsAt(
    tt,
    d((b) => delete b['correction']),
    ['/body/correction'],
    'a correction without its text',
  );
  failsAt(
    tt,
    d((b) => (b['supersedes'] = 'F192A0FC-F40C-458B-9671-087BAF138E9A')),
    ['/body/supersedes'],
    'supersedes not a lower-case uuid',
  );
  failsAt(
    tt,
    d((b) => delete b['supersedes']),
    ['/body/supersedes'],
    'no supersedes',
  );
  failsAt(
    tt,
    d((b) => (b['reason'] = ' ')),
    ['/body/reason'],
    'blank reason',
  );
  failsAt(
    tt,
    d((b) => (b['reason'] = 'x'.repeat(2001))),
    ['/body/reason'],
    'reason too long',
  );
  failsAt(
    tt,
    d((b) => (b['correction'] = 'x'.repeat(2001))),
    ['/body/correction'],
    'correction too long',
  );
  failsAt(
    tt,
    d((b) => (b['notice'] = { id: 'x' })),
    ['/body/notice'],
    'no other members',
  );
});
