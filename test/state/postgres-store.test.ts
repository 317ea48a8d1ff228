import { after, before } from 'node:test';
import { PostgresDeviceStore } from '../../src/state/postgres-store.ts';
import { findPostgresBin, postgresOrSkip, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { storeSuite } from './store-suite.ts';

let cluster: PostgresCluster | undefined;
let databases = 0;

before(async () => {
  const bin = findPostgresBin();
  if (bin) cluster = await startPostgres(bin);
});
after(async () => {
  await cluster?.stop();
});

storeSuite('PostgreSQL', async (t, limits) => {
  if (!postgresOrSkip(t) || !cluster) return undefined;
  const url = await cluster.createDatabase(`store_${++databases}`);
  const store = new PostgresDeviceStore({ url, ...(limits ? { limits } : {}) });
  await store.migrate();
  t.after(() => store.close());
  return store;
});
