/**
 * `bootdepot push`: upload images to a running bootdepot.
 *   push linuxkit NAME [--dir DIR] [--decompress]
 *                                    NAME-kernel, NAME-initrd.img, NAME-cmdline -> assets/linuxkit/
 *                                    (NAME-cmdline is optional: linuxkit build writes none for an
 *                                    empty command line, and then a stale one is removed)
 *   push FILE... --to PATH           any files -> assets/PATH (a directory when PATH ends in / or
 *                                    several files are given)
 * Each file is hashed first and sent with its SHA-256, so the server refuses a damaged upload;
 * then a HEAD checks what the server now serves. A progress bar shows on a terminal.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { request } from 'undici';
import { encodeUriComponentStrict } from '../common/escape.ts';
import { addConnectionOptions, CliError, connection, runCli, serverMessage } from './api-client.ts';
import { decompressForBoot } from './decompress.ts';

interface PushTarget {
  file: string;
  /** What to call the file in messages, when `file` is a decompressed copy. */
  label?: string;
  /** Path under the assets directory. */
  assetPath: string;
}


async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

function assetUrlPath(assetPath: string): string {
  return assetPath.split('/').map(encodeUriComponentStrict).join('/');
}

/**
 * A site answers uploads with 307 to its origin. The push is not sent on: the token was meant for
 * the server named, and a site's files are the origin's to change anyway.
 */
function siteRefusal(server: string, status: number, location: string | string[] | undefined): void {
  if (status !== 307 && status !== 308) return;
  // The Location is the origin's upload URL for the file: its base is what --server takes.
  const origin = (typeof location === 'string' ? location : '').replace(/\/api\/v1\/assets\/.*$/, '');
  throw new CliError(`${server} is a site: its assets are its origin's. Push to the origin instead: bootdepot push --server ${origin || '(the origin)'} ...`);
}

async function upload(server: string, token: string, target: PushTarget, bars: cliProgress.MultiBar | undefined): Promise<void> {
  const { size } = await stat(target.file).catch(() => {
    throw new CliError(`cannot read ${target.file}`);
  });
  const sha256 = await sha256File(target.file);
  const bar = bars?.create(size, 0, { name: target.assetPath });
  let sent = 0;
  const progress = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      bar?.update(sent);
      callback(null, chunk);
    },
  });
  const body = createReadStream(target.file, { highWaterMark: 1024 * 1024 }).pipe(progress);
  const res = await request(`${server}/api/v1/assets/${assetUrlPath(target.assetPath)}`, {
    method: 'PUT',
    body,
    headers: { authorization: `Bearer ${token}`, 'content-length': String(size), 'x-checksum-sha256': sha256, 'content-type': 'application/octet-stream' },
  }).catch((error: unknown) => {
    throw new CliError(`cannot reach ${server}: ${(error as Error).message}`);
  });
  const text = await res.body.text();
  if (res.statusCode === 401) throw new CliError(`${server} rejected the token (401)`);
  siteRefusal(server, res.statusCode, res.headers.location);
  if (res.statusCode >= 300) {
    throw new CliError(`upload of ${target.label ?? target.file} failed: ${serverMessage(res.statusCode, text)}`);
  }
  bar?.update(size);
  const head = await request(`${server}/assets/${assetUrlPath(target.assetPath)}`, { method: 'HEAD' });
  await head.body.dump();
  if (head.statusCode !== 200 || Number(head.headers['content-length']) !== size) {
    throw new CliError(`${target.assetPath} was uploaded but the server answers HEAD with ${head.statusCode}, ${String(head.headers['content-length'])} bytes`);
  }
  if (!bars) process.stderr.write(`uploaded ${target.label ?? target.file} -> /assets/${target.assetPath} (${size} bytes, sha256 ${sha256})\n`);
}

/** Removes an asset; one that is not there is fine. */
async function removeAsset(server: string, token: string, assetPath: string): Promise<void> {
  const res = await request(`${server}/api/v1/assets/${assetUrlPath(assetPath)}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).catch((error: unknown) => {
    throw new CliError(`cannot reach ${server}: ${(error as Error).message}`);
  });
  const text = await res.body.text();
  siteRefusal(server, res.statusCode, res.headers.location);
  if (res.statusCode === 404) return;
  if (res.statusCode >= 300) throw new CliError(`could not remove the old /assets/${assetPath}: ${serverMessage(res.statusCode, text)}`);
  process.stderr.write(`removed /assets/${assetPath} (no ${path.basename(assetPath)} to push: an empty command line)\n`);
}

async function pushAll(server: string, token: string, targets: PushTarget[]): Promise<void> {
  const bars = process.stderr.isTTY
    ? new cliProgress.MultiBar({ format: ' {bar} {percentage}% | {value}/{total} bytes | {name}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  try {
    for (const target of targets) await upload(server, token, target, bars);
  } finally {
    bars?.stop();
  }
}

export function pushCommand(): Command {
  const command = addConnectionOptions(new Command('push').description('upload images to a running bootdepot'))
    .argument('[files...]', 'files to upload (with --to)')
    .option('--to <path>', 'path under the assets directory')
    .action(async (files: string[], opts: { to?: string }) =>
      runCli(async () => {
        if (files.length === 0 || opts.to === undefined) throw new CliError('usage: bootdepot push FILE... --to PATH (or: bootdepot push linuxkit NAME)');
        const asDirectory = opts.to.endsWith('/') || files.length > 1;
        const base = opts.to.replace(/^\/+|\/+$/g, '');
        const targets = files.map((file) => ({ file, assetPath: asDirectory ? [base, path.basename(file)].filter(Boolean).join('/') : base }));
        const { server, token } = connection(command);
        await pushAll(server, token, targets);
      }),
    );

  command
    .command('linuxkit')
    .description('upload NAME-kernel, NAME-initrd.img and NAME-cmdline (linuxkit build output)')
    .argument('<name>', 'the name given to linuxkit build')
    .option('--dir <dir>', 'directory holding the files', '.')
    .option('--decompress', 'decompress a gzip (or zstd) kernel and initrd before uploading, as linuxkit push --decompress does (arm64 kernels must be uncompressed)')
    .action(async (name: string, opts: { dir: string; decompress?: boolean }, sub: Command) =>
      runCli(async () => {
        if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) throw new CliError(`invalid name ${JSON.stringify(name)}`);
        const isFile = async (file: string) => (await stat(file).catch(() => undefined))?.isFile() === true;
        const images = ['kernel', 'initrd.img'].map((suffix) => ({ file: path.join(opts.dir, `${name}-${suffix}`), assetPath: `linuxkit/${name}-${suffix}` }));
        for (const target of images) {
          if (!(await isFile(target.file))) throw new CliError(`missing ${target.file} (run linuxkit build first, or pass --dir)`);
        }
        const cmdline = { file: path.join(opts.dir, `${name}-cmdline`), assetPath: `linuxkit/${name}-cmdline` };
        const hasCmdline = await isFile(cmdline.file);
        const { server, token } = connection(sub);
        const cleanups: (() => Promise<void>)[] = [];
        try {
          const targets: PushTarget[] = [];
          for (const image of images) {
            if (!opts.decompress) {
              targets.push(image);
              continue;
            }
            const decompressed = await decompressForBoot(image.file);
            cleanups.push(decompressed.cleanup);
            process.stderr.write(decompressed.format ? `decompressed ${image.file} (${decompressed.format})\n` : `${image.file} is not compressed: uploading it as it is\n`);
            targets.push({ ...image, file: decompressed.file, label: image.file });
          }
          if (hasCmdline) targets.push(cmdline);
          await pushAll(server, token, targets);
        } finally {
          for (const cleanup of cleanups) await cleanup();
        }
        // An empty command line has no file: one left from an earlier push would boot the new set with old arguments.
        if (!hasCmdline) await removeAsset(server, token, cmdline.assetPath);
        process.stdout.write(
          `iPXE URL for ${name}: ${server}/linuxkit/${name}.ipxe\n` +
            `  paste it into your provider's custom iPXE field, or chain it from iPXE (arm64 machines: ${server}/linuxkit/${name}.ipxe?arch=arm64)\n` +
            `  or: linuxkit run equinixmetal -base-url ${server}/assets/linuxkit ${name}\n`,
        );
      }),
    );
  return command;
}
