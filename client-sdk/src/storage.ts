/** The tokens a signed-in client holds. */
export interface KeelTokens {
  accessToken: string;
  /** When the server stops accepting `accessToken` (by the server's clock). */
  accessTokenExpiresAt: Date;
  /** Bearer mode only: in cookie mode the refresh token lives in an HttpOnly cookie JavaScript never sees. */
  refreshToken?: string | undefined;
  refreshTokenExpiresAt?: Date | undefined;
}

/**
 * Where the client keeps its tokens. The client reads it before every call and writes it after
 * every sign-in, refresh and sign-out, so an implementation backed by shared storage (another
 * tab, a file) sees the others' refreshes. Both methods may be async.
 */
export interface TokenStorage {
  get(): KeelTokens | null | Promise<KeelTokens | null>;
  set(tokens: KeelTokens | null): void | Promise<void>;
}

/** The default storage: a variable, gone with the page or process. */
export function memoryStorage(initial: KeelTokens | null = null): TokenStorage {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}
