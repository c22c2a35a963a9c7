import type { DataSessionPolicy, TlsPolicy, User } from '../auth/types.js';
import type { MoatConfig } from '../config/schema.js';

/**
 * The effective TLS rules, from the server's settings and the user's overrides.
 *
 *  - control: `tls.control`, default `required` when a certificate is configured.
 *  - data: `tls.data` if set (per user, then server); if neither sets it, data
 *    protection follows the control connection: required on a TLS control
 *    connection, optional on one a policy allowed in clear (otherwise a user
 *    with `tls_control = "optional"` could log in but never transfer).
 *  - data_session: `tls.data_session`, default `same-user`.
 */
export class TlsPolicies {
  constructor(private readonly config: MoatConfig) {}

  get serverControl(): TlsPolicy {
    return this.config.tls.control ?? 'required';
  }

  control(user?: Pick<User, 'tlsControl'> | null): TlsPolicy {
    return user?.tlsControl ?? this.serverControl;
  }

  /** TLS offered at all (AUTH accepted, implicit listener): anything but a server-wide `off`. */
  get offered(): boolean {
    return this.serverControl !== 'off';
  }

  data(user: Pick<User, 'tlsData'> | undefined, controlSecure: boolean): 'optional' | 'required' {
    return user?.tlsData ?? this.config.tls.data ?? (controlSecure ? 'required' : 'optional');
  }

  dataSession(user: Pick<User, 'tlsDataSession'> | undefined): DataSessionPolicy {
    return user?.tlsDataSession ?? this.config.tls.data_session;
  }
}
