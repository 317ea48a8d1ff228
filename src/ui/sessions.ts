/**
 * Dashboard sessions: a random id in an HttpOnly cookie stands for a login with the admin token;
 * the token itself never leaves the server. Kept in memory (a restart logs everyone out), each
 * with an absolute expiry and a CSRF token of its own, and bounded in count: a full table drops
 * the oldest session, so failed or abandoned logins cannot grow it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  id: string;
  /** Sent back with every changing request (a form field or the X-CSRF-Token header). */
  csrf: string;
  expiresAt: number;
}

export interface SessionOptions {
  /** Lifetime of a session from its login. */
  ttlMs: number;
  /** Sessions kept at most; the oldest goes first. */
  maxSessions: number;
  /** The clock, for tests. */
  now?: () => number;
}

const token = () => randomBytes(32).toString('base64url');

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class SessionTable {
  // Insertion order is login order: the first entry is the oldest.
  private readonly sessions = new Map<string, Session>();
  private readonly now: () => number;
  private readonly options: SessionOptions;
  constructor(options: SessionOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  create(): Session {
    this.sweep();
    while (this.sessions.size >= this.options.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done) break;
      this.sessions.delete(oldest.value);
    }
    const session: Session = { id: token(), csrf: token(), expiresAt: this.now() + this.options.ttlMs };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id, or undefined (unknown, or expired and now forgotten). */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** Forgets expired sessions (every login does this first). */
  sweep(): void {
    const now = this.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}
