/**
 * The folders of a data directory, each holding plain files (no subfolders), as the catalogue
 * loads them: what the last-good copy keeps, what is watched for changes and what a site syncs
 * (nothing else in the data directory is exported to a site).
 */
export const DATA_FOLDERS = ['profiles', 'groups', 'ignition', 'templates', 'generic', 'cloud'] as const;

export type DataFolder = (typeof DATA_FOLDERS)[number];

export function isDataFolder(name: string): name is DataFolder {
  return (DATA_FOLDERS as readonly string[]).includes(name);
}
