/**
 * What a transpile reports: errors and warnings, each at a field of the Butane config in
 * Butane's own path wording (`storage.files.0.mode`), with the line and column it was found at.
 */
export interface ButaneMessage {
  /** Dotted path in the Butane config (`storage.files.0.path`); empty for the whole document. */
  path: string;
  message: string;
  /** 1-based line and column in the Butane source, when known. */
  line?: number;
  column?: number;
}

export type Path = readonly (string | number)[];

export function pathText(path: Path): string {
  return path.join('.');
}

/** Errors and warnings in the order they were found, like Butane's report. */
export class Report {
  readonly errors: ButaneMessage[] = [];
  readonly warnings: ButaneMessage[] = [];

  private readonly locate: (path: Path, key?: boolean) => { line: number; column: number } | undefined;

  constructor(locate: (path: Path, key?: boolean) => { line: number; column: number } | undefined = () => undefined) {
    this.locate = locate;
  }

  error(path: Path, message: string, at?: { line: number; column: number }): void {
    this.errors.push(this.message(path, message, at));
  }

  warn(path: Path, message: string, at?: { line: number; column: number }): void {
    this.warnings.push(this.message(path, message, at));
  }

  /** A warning about a key itself (unused keys): positioned at the key, not its value. */
  warnKey(path: Path, message: string): void {
    this.warnings.push(this.message(path, message, this.locate(path, true)));
  }

  positionOf(path: Path): { line: number; column: number } | undefined {
    return this.locate(path);
  }

  get fatal(): boolean {
    return this.errors.length > 0;
  }

  private message(path: Path, message: string, at?: { line: number; column: number }): ButaneMessage {
    const where = at ?? this.locate(path);
    return { path: pathText(path), message, ...(where ? { line: where.line, column: where.column } : {}) };
  }
}

/** The message as a problem in bootdepot's sense (common/problems.ts has the same shape). */
export interface MessageProblem {
  source: string;
  line?: number;
  column?: number;
  path?: string;
  message: string;
}

/** The message as one of `bootdepot check`'s problems, in the file it came from. */
export function toProblem(message: ButaneMessage, source: string): MessageProblem {
  return {
    source,
    ...(message.line !== undefined ? { line: message.line } : {}),
    ...(message.column !== undefined ? { column: message.column } : {}),
    ...(message.path !== '' ? { path: message.path } : {}),
    message: message.message,
  };
}

/**
 * One line for a message, the way `bootdepot check` prints problems (formatProblem):
 * `FILE:LINE:COL: PATH: MESSAGE`. (src/butane sits beside src/common, so it cannot import it.)
 */
export function formatButaneMessage(message: ButaneMessage, file: string): string {
  const problem = toProblem(message, file);
  let where = problem.source;
  if (problem.line !== undefined) where += `:${problem.line}`;
  if (problem.line !== undefined && problem.column !== undefined) where += `:${problem.column}`;
  return `${where}:${problem.path ? ` ${problem.path}:` : ''} ${problem.message}`;
}
