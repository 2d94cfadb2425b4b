import { z } from 'zod';
import { AppError } from '../../lib/errors.js';
import { restMeta } from '../../openapi/meta.js';
import type { Context } from '../../trpc/context.js';
import { authedProcedure, publicProcedure, router } from '../../trpc/init.js';
import {
  type AuthResult,
  authResultSchema,
  changePasswordInput,
  countSchema,
  loginInput,
  okSchema,
  refreshInput,
  registerInput,
  requestPasswordResetInput,
  resetPasswordInput,
  sessionIdInput,
  sessionSchema,
  userSchema,
  verifyEmailInput,
} from './schemas.js';
import type { ClientInfo } from './types.js';

/** The refresh cookie's name over plain HTTP (development, tests), and its name in production before the prefix. */
export const REFRESH_COOKIE = 'keel_refresh';
/**
 * Its name with Secure cookies (production). Browsers take a `__Secure-` cookie only with Secure,
 * from an https page: a network attacker or a sibling site on plain http cannot plant one.
 */
export const SECURE_REFRESH_COOKIE = `__Secure-${REFRESH_COOKIE}`;
/** The cookie goes to the refresh procedure only (called unbatched by the SDK). */
export const REFRESH_COOKIE_PATH = '/trpc/auth.refresh';

const refreshCookieName = (ctx: Context) => (ctx.config.auth.secureCookies ? SECURE_REFRESH_COOKIE : REFRESH_COOKIE);

/**
 * Browsers signed in before the prefix hold the cookie under its old name: read it for one release
 * (then delete this), so a deploy does not sign out every live session; the answer moves it.
 */
const legacyRefreshCookie = (ctx: Context) => (ctx.config.auth.secureCookies ? ctx.request.cookies?.get(REFRESH_COOKIE) : undefined);

const client = (ctx: Context): ClientInfo => ({ ip: ctx.request.ip, userAgent: ctx.request.userAgent, log: ctx.log });

/**
 * Cookie mode is for browsers, where a cookie rides along with any request: a mutation that sets
 * or uses the refresh cookie must come from an allowed Origin (CSRF defence beside SameSite=Strict).
 */
function assertCookieOrigin(ctx: Context): void {
  if (ctx.request.authMode !== 'cookie') return;
  if (!ctx.request.origin || !ctx.config.http.corsOrigins.includes(ctx.request.origin)) {
    throw new AppError('FORBIDDEN', 'Cookie authentication needs a request from an allowed origin.');
  }
}

/** Bearer mode returns the refresh token in the body; cookie mode puts it only in an HttpOnly cookie. */
function deliver(ctx: Context, result: AuthResult): AuthResult {
  if (ctx.request.authMode !== 'cookie' || !result.refreshToken) return result;
  ctx.request.cookies?.set(refreshCookieName(ctx), result.refreshToken, {
    httpOnly: true,
    sameSite: 'strict',
    secure: ctx.config.auth.secureCookies,
    path: REFRESH_COOKIE_PATH,
    expires: result.refreshTokenExpiresAt,
  });
  if (legacyRefreshCookie(ctx) !== undefined) ctx.request.cookies?.clear(REFRESH_COOKIE, { path: REFRESH_COOKIE_PATH, secure: true });
  const { refreshToken: _inCookie, ...rest } = result;
  return rest;
}

function clearRefreshCookie(ctx: Context): void {
  if (ctx.request.authMode !== 'cookie') return;
  // A `__Secure-` cookie is deleted only by a Set-Cookie that is Secure too.
  ctx.request.cookies?.clear(refreshCookieName(ctx), { path: REFRESH_COOKIE_PATH, secure: ctx.config.auth.secureCookies });
  if (legacyRefreshCookie(ctx) !== undefined) ctx.request.cookies?.clear(REFRESH_COOKIE, { path: REFRESH_COOKIE_PATH, secure: true });
}

const rest = restMeta('auth');
/** Calls whose input or answer holds a password or a token: nothing of them is stored (no Idempotency-Key). */
const SECRETS = { handlesSecrets: true };

export const authRouter = router({
  register: publicProcedure
    .meta(rest('POST', '/auth/register', 'Create an account and sign in', { public: true, errors: [409, 429] }))
    .meta(SECRETS)
    .input(registerInput)
    .output(authResultSchema)
    .mutation(async ({ ctx, input }) => {
      assertCookieOrigin(ctx);
      return deliver(ctx, await ctx.services.auth.register(input, client(ctx)));
    }),

  login: publicProcedure
    .meta(rest('POST', '/auth/login', 'Sign in with email and password', { public: true, errors: [401, 403, 429] }))
    .meta(SECRETS)
    .input(loginInput)
    .output(authResultSchema)
    .mutation(async ({ ctx, input }) => {
      assertCookieOrigin(ctx);
      return deliver(ctx, await ctx.services.auth.login(input, client(ctx)));
    }),

  refresh: publicProcedure
    .meta(rest('POST', '/auth/refresh', 'Exchange a refresh token for new tokens', { public: true, errors: [401] }))
    .meta(SECRETS)
    .input(refreshInput)
    .output(authResultSchema)
    .mutation(async ({ ctx, input }) => {
      let token = input?.refreshToken;
      if (!token && ctx.request.authMode === 'cookie') {
        assertCookieOrigin(ctx);
        token = ctx.request.cookies?.get(refreshCookieName(ctx)) ?? legacyRefreshCookie(ctx);
      }
      try {
        return deliver(ctx, await ctx.services.auth.refresh(token, client(ctx)));
      } catch (error) {
        clearRefreshCookie(ctx);
        throw error;
      }
    }),

  logout: authedProcedure
    .meta(rest('POST', '/auth/logout', 'End the current session'))
    .output(okSchema)
    .mutation(async ({ ctx }) => {
      clearRefreshCookie(ctx);
      return ctx.services.auth.logout(ctx.user, client(ctx));
    }),

  logoutAll: authedProcedure
    .meta(rest('POST', '/auth/logout-all', 'End every session of the account'))
    .output(countSchema)
    .mutation(async ({ ctx }) => {
      clearRefreshCookie(ctx);
      return ctx.services.auth.logoutAll(ctx.user, client(ctx));
    }),

  me: authedProcedure
    .meta(rest('GET', '/auth/me', 'The signed-in user'))
    .output(userSchema)
    .query(({ ctx }) => ctx.services.auth.me(ctx.user)),

  sessions: router({
    list: authedProcedure
      .meta(rest('GET', '/auth/sessions', "The account's live sessions"))
      .output(z.array(sessionSchema))
      .query(({ ctx }) => ctx.services.auth.listSessions(ctx.user)),
    revoke: authedProcedure
      .meta(rest('DELETE', '/auth/sessions/{sessionId}', 'End one session'))
      .input(sessionIdInput)
      .output(okSchema)
      .mutation(({ ctx, input }) => ctx.services.auth.revokeSession(ctx.user, input.sessionId, client(ctx))),
  }),

  changePassword: authedProcedure
    .meta(rest('POST', '/auth/change-password', 'Change the password (ends the other sessions)', { errors: [429] }))
    .meta(SECRETS)
    .input(changePasswordInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.auth.changePassword(ctx.user, input, client(ctx))),

  requestPasswordReset: publicProcedure
    .meta(rest('POST', '/auth/password-reset/request', 'Mail a password reset link', { public: true, errors: [429] }))
    .input(requestPasswordResetInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.auth.requestPasswordReset(input, client(ctx))),

  resetPassword: publicProcedure
    .meta(rest('POST', '/auth/password-reset/confirm', 'Set a new password with a reset token', { public: true }))
    .meta(SECRETS)
    .input(resetPasswordInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.auth.resetPassword(input, client(ctx))),

  requestEmailVerification: authedProcedure
    .meta(rest('POST', '/auth/email-verification/request', 'Mail a new email verification link', { errors: [429] }))
    .output(okSchema)
    .mutation(({ ctx }) => ctx.services.auth.requestEmailVerification(ctx.user, client(ctx))),

  verifyEmail: publicProcedure
    .meta(rest('POST', '/auth/email-verification/confirm', 'Confirm the email address with its token', { public: true }))
    .meta(SECRETS)
    .input(verifyEmailInput)
    .output(okSchema)
    .mutation(({ ctx, input }) => ctx.services.auth.verifyEmail(input.token, client(ctx))),
});
