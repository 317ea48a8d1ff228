/** Profiles that name a template in templates/: the template renders the whole script. */
import { buildTemplateData } from '../template-data.ts';
import type { KindRenderer } from '../render-context.ts';

export const renderTemplate: KindRenderer = async (profile, group, ctx) => {
  const entry = profile.template === undefined ? undefined : ctx.catalogue.templates.get(profile.template);
  if (!entry) return { wait: `profile ${profile.id}: template ${profile.template ?? '(none)'} is not loaded` };
  const output = String(await (await ctx.catalogue.templateEngines.script()).render(entry.template, buildTemplateData(profile, group, ctx)));
  const script = output.replace(/^\s+/, '');
  if (!script.startsWith('#!ipxe')) throw new Error(`template ${entry.file} did not produce an iPXE script (it must start with #!ipxe)`);
  return { script: script.endsWith('\n') ? script : `${script}\n` };
};
