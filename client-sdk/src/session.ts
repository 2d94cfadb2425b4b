import { isKeelError, type KeelErrorWithCode } from './errors.js';
import type { AuthMode } from './router.js';
import type { KeelTokens, TokenStorage } from './storage.js';
import type { AuthResult } from './types.js';

export type { AuthMode };

/** What `onSessionExpired` receives: the server's UNAUTHORIZED answer to the refresh. */
export type SessionExpiredError = KeelErrorWithCode<'UNAUTHORIZED'>;

/** How a refresh ended: a new access token, the session over, or the server out of reach. */
export type RefreshOutcome =
  | { status: 'refreshed' }
  /** The server refused the refresh (UNAUTHORIZED): the session is over and the tokens are gone. */
  | { status: 'expired'; error: SessionExpiredError }
  /** The refresh got no answer (network, 5xx, rate limit) or another refusal than UNAUTHORIZED: the tokens are kept. */
  | { status: 'failed'; error: unknown }
  /** There is nothing to refresh with (bearer mode without a refresh token, or a cookie session that ended). */
  | { status: 'none' };

export interface SessionOptions {
  mode: AuthMode;
  storage: TokenStorage;
  /** Calls `auth.refresh` (unbatched); bearer mode passes the refresh token, cookie mode nothing. */
  callRefresh(refreshToken: string | undefined): Promise<AuthResult>;
  onSessionExpired?: ((error: SessionExpiredError) => void) | undefined;
  /** Refresh this long before the access token expires. */
  refreshMarginMs: number;
}

/** `iat` of a JWT, in ms; undefined when the token is not a readable JWT. */
function issuedAtMs(jwt: string): number | undefined {
  try {
    const payload = jwt.split('.')[1];
    if (!payload) return undefined;
    const base64 = payload
      .replace(/-/g, '+')
      .replace(/_/g, '/')
      .padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const iat = (JSON.parse(atob(base64)) as { iat?: unknown }).iat;
    return typeof iat === 'number' ? iat * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The tokens and the rules around them: one refresh at a time (every caller waits for the same
 * one), a refresh shortly before the access token expires, and the end of the session.
 */
export class Session {
  private inFlight: Promise<RefreshOutcome> | null = null;
  /** The server's clock minus ours, estimated from the `iat` of the last access token received. */
  private clockOffsetMs = 0;
  /**
   * Cookie mode cannot see whether a refresh cookie exists: after a refused refresh or a sign-out
   * it stops trying on its own until the next sign-in (an explicit `refresh()` still tries).
   */
  private ended = false;
  /** Whether a call waits for the running refresh (then its failure is reported to `onSessionExpired`). */
  private callWaiting = false;
  /**
   * Changes with every sign-in and sign-out. Work started for one session (a refresh, a call to
   * retry) must not touch the next one: a refresh answered after a new login would overwrite its
   * tokens, one answered after a logout would bring the old session back.
   */
  private currentGeneration = 0;

  constructor(private readonly options: SessionOptions) {}

  get mode(): AuthMode {
    return this.options.mode;
  }

  async tokens(): Promise<KeelTokens | null> {
    return (await this.options.storage.get()) ?? null;
  }

  async accessToken(): Promise<string | undefined> {
    return (await this.tokens())?.accessToken;
  }

  get generation(): number {
    return this.currentGeneration;
  }

  /**
   * Keeps what a sign-in or refresh returned (`newSession` for a sign-in). Cookie mode keeps no
   * refresh token: the cookie has it.
   */
  async store(result: AuthResult, newSession = false): Promise<void> {
    if (newSession) this.currentGeneration += 1;
    const iat = issuedAtMs(result.accessToken);
    this.clockOffsetMs = iat === undefined ? 0 : iat - Date.now();
    this.ended = false;
    const bearer = this.options.mode === 'bearer';
    await this.options.storage.set({
      accessToken: result.accessToken,
      accessTokenExpiresAt: result.accessTokenExpiresAt,
      refreshToken: bearer ? result.refreshToken : undefined,
      refreshTokenExpiresAt: result.refreshTokenExpiresAt,
    });
  }

  async clear(): Promise<void> {
    this.currentGeneration += 1;
    this.ended = true;
    await this.options.storage.set(null);
  }

  /** Whether a refresh could work: bearer mode needs a refresh token; cookie mode a session not known to be over. */
  private canRefresh(tokens: KeelTokens | null): boolean {
    return this.options.mode === 'bearer' ? Boolean(tokens?.refreshToken) : !this.ended;
  }

  /**
   * Refreshes the session, sharing one refresh among all who ask while it runs.
   * `explicit` (the app's own `refresh()`) tries even when the session looks over, and does not
   * call `onSessionExpired`: the app gets `false` and decides. A call that joins it still does.
   */
  refresh(reason: 'call' | 'explicit' = 'call'): Promise<RefreshOutcome> {
    if (reason === 'call') this.callWaiting = true;
    this.inFlight ??= this.runRefresh(reason === 'explicit').finally(() => {
      this.inFlight = null;
      this.callWaiting = false;
    });
    return this.inFlight;
  }

  /** Waits for a running refresh; refreshes first when the access token expires within the margin. */
  async beforeCall(): Promise<RefreshOutcome | undefined> {
    if (this.inFlight) return this.inFlight;
    const tokens = await this.tokens();
    if (!tokens || !this.canRefresh(tokens)) return undefined;
    const serverNow = Date.now() + this.clockOffsetMs;
    if (tokens.accessTokenExpiresAt.getTime() - serverNow > this.options.refreshMarginMs) return undefined;
    return this.refresh();
  }

  /**
   * A throwing callback must not fail the calls waiting for this refresh, nor crash a Node
   * process: its error is reported (reportError where the platform has it, else the console).
   */
  private notifyExpired(error: SessionExpiredError): void {
    try {
      this.options.onSessionExpired?.(error);
    } catch (callbackError) {
      const report = (globalThis as { reportError?: (error: unknown) => void }).reportError;
      if (report) report(callbackError);
      else console.error('@keel/client-sdk: onSessionExpired threw', callbackError);
    }
  }

  private async runRefresh(force: boolean): Promise<RefreshOutcome> {
    const generation = this.currentGeneration;
    const tokens = await this.tokens();
    if (!force && !this.canRefresh(tokens)) return { status: 'none' };
    if (this.options.mode === 'bearer' && !tokens?.refreshToken) return { status: 'none' };
    let result: AuthResult;
    try {
      result = await this.options.callRefresh(this.options.mode === 'bearer' ? tokens?.refreshToken : undefined);
    } catch (error) {
      // A sign-in or sign-out since it started: that session's tokens are not this refresh's to touch.
      if (this.currentGeneration !== generation) return { status: 'none' };
      // The server answers every refusal of the session itself (malformed, unknown, expired, reused
      // or missing token) with UNAUTHORIZED. Anything else (FORBIDDEN for a foreign Origin in cookie
      // mode, NOT_FOUND from a proxy, a 5xx) says nothing about the session: keep the tokens.
      if (!isKeelError(error, 'UNAUTHORIZED')) return { status: 'failed', error };
      // Another caller (a second tab sharing the storage) may have rotated the token meanwhile.
      const now = await this.tokens();
      if (this.options.mode === 'bearer' && now?.refreshToken && now.refreshToken !== tokens?.refreshToken) {
        return { status: 'refreshed' };
      }
      try {
        await this.clear();
      } finally {
        // Even when the storage fails to forget the tokens, the session is over: say so.
        if (this.callWaiting) this.notifyExpired(error);
      }
      return { status: 'expired', error };
    }
    if (this.currentGeneration !== generation) return { status: 'none' };
    await this.store(result);
    return { status: 'refreshed' };
  }
}
