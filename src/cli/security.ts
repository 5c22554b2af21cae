/**
 * The TLS and SASL options every command that opens ZooKeeper sessions takes beside `--servers`.
 *
 * Secrets never come from argv, which every user of the machine can read in /proc/PID/cmdline:
 * key material is read from files named on the command line, the SASL password from the
 * environment variable ZKWARDEN_SASL_PASSWORD or from a file. A `--sasl-password` flag exists
 * only to refuse with that explanation instead of "unknown option".
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { AuthFailedError, InvalidArgumentError, SessionClosedRequireSaslAuthError, type ClientOptions } from '../zk/index.ts';
import { PreparedTls, type TlsOptions } from '../zk/transport.ts';
import { CliError, ExitCode } from './output.ts';

export const SASL_PASSWORD_ENV = 'ZKWARDEN_SASL_PASSWORD';

export interface SecurityCliOptions {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
  saslUser?: string;
  saslPasswordFile?: string;
  saslPassword?: string;
}

export type ClientSecurity = Pick<ClientOptions, 'tls' | 'sasl'>;

export function addSecurityOptions(cmd: Command): Command {
  return cmd
    .option('--tls-ca <file>', "connect with TLS (the servers' secureClientPort) and trust this PEM CA certificate")
    .option('--tls-cert <file>', 'PEM client certificate: the session gets its x509 identity (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--tls-server-name <name>', "the name the servers' certificates carry, when it is not the address in --servers")
    .option('--sasl-user <name>', `SASL DIGEST-MD5 user; the password comes from $${SASL_PASSWORD_ENV} or --sasl-password-file`)
    .option('--sasl-password-file <file>', 'file holding the SASL password (one line)')
    .addOption(new Option('--sasl-password <password>').hideHelp());
}

function readInput(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CliError(`${option} ${file}: cannot read (${code})`, ExitCode.usage);
  }
}

const tlsArgument: Record<string, string> = { 'tls.ca': '--tls-ca', 'tls.cert': '--tls-cert', 'tls.key': '--tls-key', 'tls.serverName': '--tls-server-name' };

/** The client options for these flags; bad files or combinations are usage errors (exit 2) naming the option. */
export function securityFromOptions(o: SecurityCliOptions, env: NodeJS.ProcessEnv = process.env): ClientSecurity {
  if (o.saslPassword !== undefined) {
    throw new CliError(
      `--sasl-password is not accepted: a command line is readable by every user of the machine; put the password in $${SASL_PASSWORD_ENV} or a file for --sasl-password-file`,
    );
  }
  const out: ClientSecurity = {};
  if (o.tlsCa === undefined && (o.tlsCert !== undefined || o.tlsKey !== undefined || o.tlsServerName !== undefined)) {
    throw new CliError("--tls-cert, --tls-key and --tls-server-name need --tls-ca (the CA that signed the servers' certificates)");
  }
  if (o.tlsCa !== undefined) {
    const tls: TlsOptions = { ca: readInput(o.tlsCa, '--tls-ca') };
    if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together');
    if (o.tlsCert !== undefined && o.tlsKey !== undefined) {
      tls.cert = readInput(o.tlsCert, '--tls-cert');
      tls.key = readInput(o.tlsKey, '--tls-key');
    }
    if (o.tlsServerName !== undefined) tls.serverName = o.tlsServerName;
    try {
      new PreparedTls(tls);
    } catch (e) {
      if (e instanceof InvalidArgumentError) {
        const option = tlsArgument[e.argument] ?? '--tls-ca';
        const file = option === '--tls-key' ? o.tlsKey : option === '--tls-cert' ? o.tlsCert : option === '--tls-ca' ? o.tlsCa : undefined;
        throw new CliError(`${option}${file ? ` ${file}` : ''}: ${e.message.replace(/^invalid [^:]+: /, '')}`, ExitCode.usage);
      }
      throw e;
    }
    out.tls = tls;
  }
  if (o.saslUser !== undefined) {
    if (o.saslUser === '') throw new CliError('--sasl-user: empty user name');
    let password: string;
    if (o.saslPasswordFile !== undefined) {
      password = readInput(o.saslPasswordFile, '--sasl-password-file').replace(/\r?\n$/, '');
      if (password === '') throw new CliError(`--sasl-password-file ${o.saslPasswordFile}: the file is empty`);
    } else {
      const v = env[SASL_PASSWORD_ENV];
      if (v === undefined || v === '') throw new CliError(`--sasl-user ${o.saslUser}: no password; set $${SASL_PASSWORD_ENV} or give --sasl-password-file`);
      password = v;
    }
    out.sasl = { username: o.saslUser, password };
  } else if (o.saslPasswordFile !== undefined) {
    throw new CliError('--sasl-password-file needs --sasl-user');
  }
  return out;
}

/**
 * The CLI's answer when ZooKeeper refuses a connection's authentication, at connect or at any
 * later request (a server that enforces authentication answers the first request of a connection
 * without it): a usage error (exit 2), since the fix is in the credentials given. Null otherwise.
 */
export function credentialRefusal(e: unknown): CliError | null {
  if (e instanceof AuthFailedError || e instanceof SessionClosedRequireSaslAuthError) {
    return new CliError(
      `ZooKeeper refused the connection's authentication (a wrong credential, or none where the ensemble requires one): ${e.message}`,
      ExitCode.usage,
    );
  }
  return null;
}
