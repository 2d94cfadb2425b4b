import { z } from 'zod';

/**
 * A string the database can store: PostgreSQL's text cannot hold NUL (U+0000), and the query
 * would fail with an internal error; refused here as a field error instead.
 */
export const text = () => z.string().refine((value) => !value.includes('\u0000'), { message: 'must not contain NUL characters' });
