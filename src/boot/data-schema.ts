/**
 * Schemas of the data directory's files. Profiles and groups are supersets of matchbox's
 * JSON formats, so matchbox data loads unchanged.
 */
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../common/documents.ts';
import { PRESETS } from '../config/schema.ts';

/** Ids appear in logs, URLs and script comments: keep them to characters that need no escaping. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
/** Operator-written script text: anything but a line break, which would start a new iPXE command. */
const ONE_LINE = '^[^\\r\\n\\u2028\\u2029\\u0085]*$';
const OneLine = (options: object = {}) => Type.String({ pattern: ONE_LINE, ...options });

export const FLATCAR_CHANNELS = ['stable', 'beta', 'alpha', 'lts'] as const;
export const FLATCAR_ARCHES = ['amd64', 'arm64'] as const;

const MatchboxBoot = Type.Object(
  {
    /**
     * Kernel URL or path, e.g. `/assets/flatcar/stable/amd64/current/flatcar_production_pxe.vmlinuz`.
     * None (`"boot": {}`, as terraform-provider-matchbox writes an Ignition-only profile): the
     * profile serves its configs, and a machine asking it for a script waits, told why.
     */
    kernel: Type.Optional(OneLine()),
    /** Initrd URLs or paths, one `initrd` line each; `--name NAME URL` is passed through. */
    initrd: Type.Array(OneLine({ minLength: 1 }), { default: [] }),
    /** Kernel arguments, joined with spaces. */
    args: Type.Array(OneLine(), { default: [] }),
    /**
     * matchbox's legacy form (before v0.7, which ignores it): arguments as a map, appended to
     * `args` in key order as `key=value`, or `key` for an empty value, as matchbox v0.6 did.
     */
    cmdline: Type.Optional(Type.Record(OneLine(), OneLine())),
  },
  { additionalProperties: false },
);

const LinuxKit = Type.Object(
  {
    /** `linuxkit build` output name: NAME-kernel, NAME-initrd.img and NAME-cmdline. */
    name: Type.String({ pattern: ID_PATTERN }),
    /** Directory under the assets directory holding the set; default `linuxkit`. */
    dir: Type.String({ pattern: '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$', default: 'linuxkit' }),
  },
  { additionalProperties: false },
);

const Flatcar = Type.Object(
  {
    channel: StringEnum(FLATCAR_CHANNELS, { default: 'stable' }),
    /** `auto` follows the device's iPXE build arch (x86_64 -> amd64, arm64 -> arm64). */
    arch: StringEnum([...FLATCAR_ARCHES, 'auto'] as const, { default: 'auto' }),
    /** A release number such as `4152.2.0`, or `current`. */
    version: Type.String({ pattern: '^(current|[0-9]+\\.[0-9]+\\.[0-9]+)$', default: 'current' }),
    /**
     * Where the images come from: `mirror` (bootdepot's pull-through mirror of the channel's
     * release server, `current` resolved to a release per boot), `upstream` (machines fetch
     * from the Flatcar release server themselves), `local` (assets/flatcar/CHANNEL/ARCH/VERSION/),
     * or an http(s) base URL of a directory holding them.
     */
    source: Type.String({ pattern: '^(mirror|upstream|local|https?://[^\\s$#|&"\'`\\\\]+)$', default: 'mirror' }),
    /** Log in on the console without a password (`flatcar.autologin`): for labs, not production. */
    autologin: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

/** The `id` written in a profile or group file: named in messages only (files are found by name). */
const DeclaredId = OneLine({ maxLength: 256 });

export const ProfileSchema = Type.Object(
  {
    /**
     * matchbox's profile id. Groups find a profile by its file name (`profiles/NAME.json`), as
     * matchbox does; the id is named in messages, and `check` warns when it differs.
     */
    id: Type.Optional(DeclaredId),
    name: Type.Optional(Type.String()),
    /** matchbox: kernel, initrds and arguments. */
    boot: Type.Optional(MatchboxBoot),
    /** A template in templates/ that renders the whole script. */
    template: Type.Optional(Type.String({ pattern: ID_PATTERN })),
    /** A LinuxKit image set in the assets directory. */
    linuxkit: Type.Optional(LinuxKit),
    /** Flatcar Container Linux PXE images. */
    flatcar: Type.Optional(Flatcar),
    /** Provider preset for consoles and OEM ids; default from the config's boot.preset. */
    preset: Type.Optional(StringEnum(PRESETS)),
    /** Extra kernel arguments for the linuxkit and flatcar kinds. */
    args: Type.Optional(Type.Array(OneLine())),
    /**
     * Install to disk once: when a machine booted with this profile reports `succeeded`, its
     * next boot becomes `local`, so an always-PXE machine boots its disk instead of reinstalling.
     */
    installOnce: Type.Optional(Type.Boolean()),
    /** matchbox: Ignition config in ignition/ served at /ignition to the profile's machines. */
    ignition_id: Type.Optional(Type.String({ pattern: ID_PATTERN })),
    /** matchbox: a Go template in generic/, served at /generic to the profile's machines (empty: none). */
    generic_id: Type.Optional(Type.String()),
    /** matchbox: a Go template in cloud/ rendering a cloud-config or script, served at /cloud (empty: none). */
    cloud_id: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const GroupSchema = Type.Object(
  {
    /** matchbox's group id: named in messages; the group is known by its file name. */
    id: Type.Optional(DeclaredId),
    name: Type.Optional(Type.String()),
    /**
     * The profile this group's machines boot: its file name in profiles/ without extension.
     * None (or empty): a group for metadata only, as in matchbox; machines it selects get no
     * script (they wait, told why) but its metadata is served.
     */
    profile: Type.Optional(Type.Union([Type.String({ pattern: ID_PATTERN }), Type.Literal('')])),
    /**
     * Labels a machine must all have; none makes this the default group. An empty value matches
     * a machine that does not send the label (as in matchbox).
     */
    selector: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }), Type.String(), {
      default: {},
    }),
    /** Free-form data for templates, Ignition and /metadata. */
    metadata: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
    /**
     * Serve this group's Ignition and metadata to anyone who asks with its labels, as matchbox
     * does, instead of only to the boot that holds the boot's id or the address that fetched
     * its script. Only for configs that hold nothing secret.
     */
    public: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export type ProfileFile = Static<typeof ProfileSchema>;
export type GroupFile = Static<typeof GroupSchema>;
export type FlatcarSpec = Static<typeof Flatcar>;
export type LinuxKitSpec = Static<typeof LinuxKit>;
export type MatchboxBootSpec = Static<typeof MatchboxBoot>;
