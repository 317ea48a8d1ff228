/**
 * Problems found in config and data files: where (file, line, column, path inside the document)
 * and what. `check` prints them all; `serve` refuses a bad config with all of them and skips a
 * bad data file after logging its problems.
 */
export interface Problem {
  /** File the problem is in, or a pseudo-source such as `--port` or `BOOTDEPOT_PORT`. */
  source: string;
  /** 1-based line, when known. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** Location inside the document, as a dotted path (e.g. `boot.kernel`), when it applies. */
  path?: string;
  message: string;
  /**
   * `warning`: worth saying, but nothing is refused or stops a machine (a file that loads
   * differently from what its author may think). `check` lists warnings and still exits 0.
   */
  severity?: 'warning';
}

export function isWarning(problem: Problem): boolean {
  return problem.severity === 'warning';
}

export function formatProblem(problem: Problem): string {
  let where = problem.source;
  if (problem.line !== undefined) where += `:${problem.line}`;
  if (problem.line !== undefined && problem.column !== undefined) where += `:${problem.column}`;
  const at = problem.path ? ` ${problem.path}:` : '';
  return `${where}:${isWarning(problem) ? ' warning:' : ''}${at} ${problem.message}`;
}
