import { z } from 'zod';

/**
 * A UTF-16 surrogate without its pair: JSON can carry one (`"\ud800"`), but it is no character,
 * and encoding it to UTF-8 (the database, a hash) silently replaces it with U+FFFD: stored text
 * would differ from what was sent, and two different passwords would hash alike.
 */
const LONE_SURROGATE = /\p{Cs}/u;

/** Refuses text that UTF-8 cannot carry as sent (see LONE_SURROGATE). */
export const wellFormed = <T extends z.ZodType<string, unknown>>(schema: T) =>
  schema.refine((value) => !LONE_SURROGATE.test(value), { message: 'must be well-formed Unicode (a lone surrogate is not a character)' });

/**
 * A string the database can store as sent: PostgreSQL's text cannot hold NUL (U+0000), and the
 * query would fail with an internal error; a lone surrogate would be stored changed. Both are
 * refused here as field errors instead.
 */
export const text = () =>
  wellFormed(z.string().refine((value) => !value.includes('\u0000'), { message: 'must not contain NUL characters' }));
