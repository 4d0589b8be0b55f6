import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { securePrivateDir } from '../broker/core/data-dir.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';

const modeOf = (p: string) => statSync(p).mode & 0o777;

t.test(
  'securePrivateDir: a new data dir is 0700; an existing one open to others is narrowed and says so',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'liaison-datadir-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const fresh = join(root, 'a', 'data');
    t.same(securePrivateDir(fresh), { narrowedFrom: null });
    t.equal(modeOf(fresh), 0o700, 'created owner-only');

    const open = join(root, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    t.same(securePrivateDir(open), { narrowedFrom: 0o755 }, 'reports the mode it had');
    t.equal(modeOf(open), 0o700, 'narrowed to the owner');
    t.same(securePrivateDir(open), { narrowedFrom: null }, 'nothing to do the second time');
  },
);

t.test(
  "the demo network: the registry seed and the agencies' private keys are owner-only, whatever the umask",
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'liaison-demo-modes-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const before = process.umask(0o022);
    t.teardown(() => void process.umask(before));
    const { seedFile } = await ensureDemoNetwork(dataDir);
    t.equal(modeOf(seedFile), 0o600, 'registry.json 0600');
    t.equal(modeOf(join(dataDir, 'demo', 'agencies')), 0o700);
    t.equal(modeOf(join(dataDir, 'demo', 'agencies', 'vn-customs.json')), 0o600);
  },
);
