/**
 * `push linuxkit --decompress`: what `linuxkit push equinixmetal --decompress` does before it
 * copies a set, since arm64 kernels (and some iPXE builds) cannot boot a gzip-compressed image.
 * gzip, which `linuxkit build` writes, and zstd are undone with node:zlib; a file in another
 * format that a kernel can be shipped in (bzip2, xz, lzma, lz4) is refused with the command
 * that undoes it, rather than sent compressed: no pure-JavaScript library for those is kept
 * well enough to take on. A file that is not compressed goes as it is (an x86 bzImage is not).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { CliError } from './api-client.ts';

type Format = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'lzma' | 'lz4';

const MAGIC: [Format, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
  // LZMA alone has no magic; the kernel's own lzma files start with these properties.
  ['lzma', [0x5d, 0x00, 0x00]],
];

const UNDO: Record<Exclude<Format, 'gzip' | 'zstd'>, string> = { bzip2: 'bunzip2 -k', xz: 'unxz -k', lzma: 'unlzma -k', lz4: 'unlz4' };

/** The compression a file starts with, if any known one. */
export async function sniffCompression(file: string): Promise<Format | undefined> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return MAGIC.find(([, magic]) => bytesRead >= magic.length && magic.every((byte, i) => head[i] === byte))?.[0];
  } finally {
    await handle.close();
  }
}

export interface Decompressed {
  /** The file to upload: the decompressed copy, or the original when it was not compressed. */
  file: string;
  /** What was found: `gzip`, `zstd`, or undefined for a file sent as it is. */
  format: 'gzip' | 'zstd' | undefined;
  /** Removes the copy (nothing for an original). */
  cleanup: () => Promise<void>;
}

/** Decompresses `file` into a temporary copy when it is gzip or zstd; refuses other compressions. */
export async function decompressForBoot(file: string): Promise<Decompressed> {
  const format = await sniffCompression(file).catch(() => {
    throw new CliError(`cannot read ${file}`);
  });
  if (format === undefined) return { file, format: undefined, cleanup: async () => {} };
  if (format !== 'gzip' && format !== 'zstd') {
    throw new CliError(`${file} is ${format}-compressed; --decompress undoes gzip and zstd only: run \`${UNDO[format]} ${file}\` and push the result`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'bootdepot-push-'));
  const out = path.join(dir, path.basename(file));
  try {
    await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), format === 'gzip' ? createGunzip() : createZstdDecompress(), createWriteStream(out));
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new CliError(`cannot decompress ${file} (${format}): ${(error as Error).message}`);
  }
  return { file: out, format, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
