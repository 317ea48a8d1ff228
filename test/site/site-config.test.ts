/** The `site:` section's side of /assets/: the implicit `origin` upstream, and what is refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/loader.ts';
import { directoriesFor } from '../../src/config/directories.ts';

const load = (text: string) => loadConfig({ file: { path: '/etc/bootdepot/bootdepot.yaml', text }, cwd: '/' });
const SITE = 'site: {name: rack-7, origin: "http://origin.example:8080/", tokenFile: site-token}\n';

describe('site config', () => {
  it('adds the origin\'s /assets/ as the mirror upstream `origin`, every path mutable', () => {
    const { config, problems } = load(SITE);
    assert.deepEqual(problems, []);
    const origin = config?.mirror.mirrors.origin;
    assert.equal(origin?.url, 'http://origin.example:8080/assets');
    assert.equal(origin.mutableOnly, true);
    assert.equal(origin.flatcarDigests, false);
    // A site needs no assets directory of its own.
    assert.ok(config && !directoriesFor(config, 'serve').some((need) => need.what === 'assets directory'));
  });

  it('adds nothing without a site section', () => {
    const { config } = load('');
    assert.equal(config?.mirror.mirrors.origin, undefined);
    assert.ok(config && directoriesFor(config, 'serve').some((need) => need.what === 'assets directory'));
  });

  it('refuses a mirror of its own named origin, and an origin that is this server', () => {
    const taken = load(`${SITE}mirror: {mirrors: {origin: "https://elsewhere.example/pub"}}\n`);
    assert.equal(taken.config, undefined);
    assert.match(taken.problems.map((problem) => `${problem.path}: ${problem.message}`).join('\n'), /mirror\.mirrors\.origin: the name origin is the site's origin .*give this mirror another name/);
    const itself = load(`${SITE}server: {baseUrl: "http://origin.example:8080"}\n`);
    assert.equal(itself.config, undefined);
    assert.match(itself.problems.map((problem) => `${problem.path}: ${problem.message}`).join('\n'), /site\.origin: is this server's own server\.baseUrl/);
    const bad = load('site: {name: rack-7, origin: "ftp://origin.example/", tokenFile: t}\n');
    assert.match(bad.problems.map((problem) => `${problem.path}: ${problem.message}`).join('\n'), /site\.origin: .*must be an http:\/\/ or https:\/\/ URL/);
  });
});
