import path from 'node:path';
import { SqliteDeviceStore } from '../../src/state/sqlite-store.ts';
import { makeTree } from '../helpers.ts';
import { storeSuite } from './store-suite.ts';

storeSuite('SQLite', async (t, limits) => {
  const dir = await makeTree(t, {});
  const store = new SqliteDeviceStore(path.join(dir, 'state', 'bootdepot.db'), limits ? { limits } : {});
  await store.migrate();
  t.after(() => store.close());
  return store;
});
