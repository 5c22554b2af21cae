/**
 * The ACL policy for the recipes' znodes (docs/security.md): the cluster's own members may do
 * everything, everyone else may only read.
 *
 * Why each right goes to the members and to nobody else, on the election parent (ZooKeeper
 * checks a child's create and delete against the parent's ACL, a setData against the node's):
 * CREATE lets a process stand as a candidate; WRITE on the parent is the term's claim (a forged
 * claim would name a leader ZooKeeper never elected); DELETE lets a member (or the guard, with a
 * member's credential) depose a leader by deleting its candidate znode, which is what an outsider
 * must never do; ADMIN changes all of this. READ stays open (or goes to `readers`) so services
 * can find the leader. The candidate znodes carry the same ACL, so a member can also bump one
 * (WRITE) to fence its holder.
 *
 * What no ACL governs: sessions. Ending a session (closeSession) is checked against nothing but
 * the session's id and password, and the password derives from the id; on an ensemble that
 * enforces authentication only an authenticated connection can do it, but any authenticated one.
 */
import { Perms, type ACL, type Id } from '../zk/index.ts';
import { RecipeUsageError } from './errors.ts';

export function clusterAcl(members: readonly Id[], readers: readonly Id[] | 'anyone' = 'anyone'): ACL[] {
  if (!Array.isArray(members) || members.length === 0)
    throw new RecipeUsageError('members', 'at least one member identity, e.g. { scheme: "x509", id: "CN=meta1,O=example" }');
  for (const [i, m] of [...members, ...(readers === 'anyone' ? [] : readers)].entries()) {
    if (!m || typeof m.scheme !== 'string' || m.scheme === '' || typeof m.id !== 'string') {
      throw new RecipeUsageError(`identity ${i}`, 'expected { scheme, id } (schemes: x509, sasl, digest, ip, world)');
    }
  }
  const readIds = readers === 'anyone' ? [{ scheme: 'world', id: 'anyone' }] : readers;
  return [...members.map((id) => ({ perms: Perms.ALL, id: { ...id } })), ...readIds.map((id) => ({ perms: Perms.READ, id: { ...id } }))];
}
