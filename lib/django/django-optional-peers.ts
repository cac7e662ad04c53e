/**
 * The npm packages that verify Django's argon2 and bcrypt hashes. They are optional peers: loaded
 * the first time such a hash is met, never at import time, so an app whose users all have PBKDF2
 * hashes installs nothing more.
 */

/** Checks a password against a hash; resolves `false` on a mismatch. */
export type PeerVerify = (password: string, hash: string) => Promise<boolean>;

interface PeerCandidate {
  /** The npm package name, as the user would `npm install` it. */
  name: string;
  adapt(module: any): PeerVerify;
}

interface PeerKind {
  /** Django's hasher class, for the error message. */
  hasher: string;
  candidates: PeerCandidate[];
}

/** `import()` of a CommonJS package gives `{ default: module.exports, ...named }`. */
function unwrap(module: any): any {
  return module &&
    typeof module.verify !== 'function' &&
    typeof module.compare !== 'function' &&
    module.default
    ? module.default
    : module;
}

const ARGON2: PeerKind = {
  hasher: 'Argon2PasswordHasher',
  candidates: [
    {
      name: 'argon2',
      // argon2.verify(phc, plain)
      adapt: (m) => (password, hash) => unwrap(m).verify(hash, password),
    },
    {
      name: '@node-rs/argon2',
      // verify(phc, plain)
      adapt: (m) => (password, hash) => unwrap(m).verify(hash, password),
    },
  ],
};

const BCRYPT: PeerKind = {
  hasher: 'BCryptSHA256PasswordHasher / BCryptPasswordHasher',
  candidates: [
    {
      name: 'bcrypt',
      adapt: (m) => (password, hash) => unwrap(m).compare(password, hash),
    },
    {
      name: 'bcryptjs',
      adapt: (m) => (password, hash) => unwrap(m).compare(password, hash),
    },
  ],
};

/**
 * Thrown by `verifyDjangoPassword` when a stored hash needs an optional package that is not
 * installed (or does not load on this platform). The message names the package to install; the
 * import failures are in `cause`.
 */
export class DjangoPasswordHasherUnavailableError extends Error {
  override readonly name = 'DjangoPasswordHasherUnavailableError';
  /** The packages that would do, in order of preference. */
  readonly packages: readonly string[];

  constructor(hasher: string, packages: string[], causes: unknown[]) {
    const reasons = causes
      .map((cause, i) => `${packages[i]}: ${describe(cause)}`)
      .join('; ');
    super(
      `verifyDjangoPassword: this password was hashed by Django's ${hasher}; install the ` +
        `optional package \`${packages[0]}\` (npm install ${packages[0]})` +
        (packages.length > 1
          ? ` or \`${packages.slice(1).join('` or `')}\``
          : '') +
        ` to verify it. (${reasons})`,
      { cause: causes.length === 1 ? causes[0] : causes },
    );
    this.packages = packages;
  }
}

function describe(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.split('\n')[0];
}

const loaded = new Map<PeerKind, Promise<PeerVerify>>();

async function load(kind: PeerKind): Promise<PeerVerify> {
  const causes: unknown[] = [];
  for (const candidate of kind.candidates) {
    try {
      const module: unknown = await import(candidate.name);
      return candidate.adapt(module);
    } catch (error) {
      causes.push(error);
    }
  }
  throw new DjangoPasswordHasherUnavailableError(
    kind.hasher,
    kind.candidates.map((c) => c.name),
    causes,
  );
}

function peer(kind: PeerKind): Promise<PeerVerify> {
  let verify = loaded.get(kind);
  if (!verify) {
    verify = load(kind);
    // A failed load is not remembered: installing the package fixes the next attempt.
    verify.catch(() => loaded.delete(kind));
    loaded.set(kind, verify);
  }
  return verify;
}

/** `verify(password, phc)` from `argon2`, else `@node-rs/argon2`. */
export const loadArgon2 = (): Promise<PeerVerify> => peer(ARGON2);

/** `compare(password, hash)` from `bcrypt`, else `bcryptjs`. */
export const loadBcrypt = (): Promise<PeerVerify> => peer(BCRYPT);

/** The candidates, for tests that check each adapter against the real package. */
export const DJANGO_PEER_CANDIDATES = {
  argon2: ARGON2.candidates,
  bcrypt: BCRYPT.candidates,
} as const;
