/** JSON schemas of the admin API's bodies and answers; they also make the OpenAPI document. */
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../common/documents.ts';
import { NEXT_BOOT_ACTIONS, REPORT_STATES, STAGES } from '../state/model.ts';

const Text = Type.String();
const NullableText = Type.Union([Type.String(), Type.Null()]);

export const NextBootSchema = Type.Object({
  action: StringEnum(NEXT_BOOT_ACTIONS),
  profile: Type.Optional(Text),
  reason: Text,
  setAt: Type.String({ format: 'date-time' }),
});

export const DeviceSchema = Type.Object(
  {
    id: Type.String({ description: 'MAC address, lowercase colon form', examples: ['52:54:00:12:34:56'] }),
    firstSeen: Type.String({ format: 'date-time' }),
    lastSeen: Type.String({ format: 'date-time' }),
    bootCount: Type.Integer(),
    stage: Type.Union([StringEnum(STAGES), Type.Null()]),
    lastAction: NullableText,
    lastProfile: NullableText,
    lastGroup: NullableText,
    lastIp: NullableText,
    lastBootId: NullableText,
    identity: Type.Record(Type.String(), Type.String()),
    nextBoot: Type.Union([NextBootSchema, Type.Null()]),
    lastReport: Type.Union([
      Type.Object({ state: StringEnum(REPORT_STATES), code: Type.Optional(Type.Integer()), message: Type.Optional(Text), at: Type.String({ format: 'date-time' }) }),
      Type.Null(),
    ]),
    problem: Type.Optional(Type.Union([Text, Type.Null()], { description: 'Why the device waits, or what failed in its current boot' })),
  },
  { description: 'A device and what is recorded about it' },
);

export const EventSchema = Type.Object(
  {
    id: Type.Integer(),
    deviceId: Text,
    bootId: Type.Optional(Text),
    at: Type.String({ format: 'date-time' }),
    detail: Type.Object({ type: Text }, { additionalProperties: true }),
  },
  { description: 'One boot event' },
);

export const DeviceIdParams = Type.Object({ id: Type.String({ description: 'MAC address (colon or hyphen form)' }) });

export const DeviceListQuery = Type.Object({
  stage: Type.Optional(StringEnum(STAGES)),
  profile: Type.Optional(Text),
  seenSince: Type.Optional(Type.String({ format: 'date-time', description: 'only devices seen at or after this time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 1000 })),
});

export const DeviceShowQuery = Type.Object({ events: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 50 })) });

export const NextBootBody = Type.Object(
  {
    action: StringEnum(NEXT_BOOT_ACTIONS, { description: 'profile: normal matching (or always `profile` when given); local: boot the disk; hold: wait; once: boot `profile` once' }),
    profile: Type.Optional(Type.String({ minLength: 1 })),
    reason: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type NextBootBody = Static<typeof NextBootBody>;

export const ErrorSchema = Type.Object({ error: Text, statusCode: Type.Integer() });
