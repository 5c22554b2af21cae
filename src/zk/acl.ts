/**
 * Digest ACL helpers. The digest scheme identifies a user by "user:base64(sha1(user:password))";
 * the session authenticates with addAuth('digest', 'user:password').
 */
import { createHash } from 'node:crypto';
import { Perms, type ACL, type Id } from './records.ts';

/** The Id a digest ACL names for user:password (DigestAuthenticationProvider.generateDigest). */
export function digestId(user: string, password: string): Id {
  const digest = createHash('sha1').update(`${user}:${password}`, 'utf8').digest('base64');
  return { scheme: 'digest', id: `${user}:${digest}` };
}

/** An ACL list granting perms (default all) to one digest user. */
export function digestAcl(user: string, password: string, perms: number = Perms.ALL): ACL[] {
  return [{ perms, id: digestId(user, password) }];
}
