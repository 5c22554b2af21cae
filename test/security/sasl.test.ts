/**
 * The DIGEST-MD5 mechanism against RFC 2831's own examples, its refusals, and the SASL request
 * on the wire. Pure: no server (the real server is in secure-ensemble.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { DigestMd5Client, SaslMechanismError, digestMd5Factory, parseDirectives } from '../../src/zk/sasl.ts';
import { SaslExchange, decodeSaslReply, encodeSaslRequest } from '../../src/zk/sasl-wire.ts';
import { JuteWriter } from '../../src/zk/jute.ts';
import { AuthFailedError, InvalidArgumentError, ProtocolError, SessionClosedRequireSaslAuthError } from '../../src/zk/errors.ts';

const IMAP_CHALLENGE = 'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8';

function rfcClient(protocol: string, cnonce: string): DigestMd5Client {
  return new DigestMd5Client({ username: 'chris', password: 'secret' }, { protocol, serverName: 'elwood.innosoft.com', cnonce });
}

test("RFC 2831 section 4, IMAP example: the response and the server's rspauth match the RFC", () => {
  const c = rfcClient('imap', 'OA6MHXh6VqTrRk');
  assert.equal(c.initialResponse().length, 0, 'DIGEST-MD5 has no initial response');
  const response = parseDirectives(c.evaluateChallenge(Buffer.from(IMAP_CHALLENGE))!.toString());
  assert.deepEqual(response.get('response'), ['d388dad90d4bbd760a152321f2143af7']);
  assert.deepEqual(response.get('digest-uri'), ['imap/elwood.innosoft.com']);
  assert.deepEqual(response.get('nc'), ['00000001']);
  assert.deepEqual(response.get('qop'), ['auth']);
  assert.deepEqual(response.get('charset'), ['utf-8']);
  assert.equal(c.isComplete, false, 'not complete before the server proved itself');
  assert.equal(c.evaluateChallenge(Buffer.from('rspauth=ea40f60335c427b5527b84dbabcdfffd')), null);
  assert.equal(c.isComplete, true);
});

test('RFC 2831 section 4, ACAP example', () => {
  const c = rfcClient('acap', 'OA9BSuZWMSpW8m');
  const challenge = 'realm="elwood.innosoft.com",nonce="OA9BSXrbuRhWay",qop="auth",algorithm=md5-sess,charset=utf-8';
  const response = parseDirectives(c.evaluateChallenge(Buffer.from(challenge))!.toString());
  assert.deepEqual(response.get('response'), ['6084c6db3fede7352c551284490fd0fc']);
  c.evaluateChallenge(Buffer.from('rspauth=2f0b3d7c3c2e486600ef710726aa2eae'));
  assert.equal(c.isComplete, true);
});

test("ZooKeeper's digest-uri by default: zookeeper/zk-sasl-md5", () => {
  const c = new DigestMd5Client({ username: 'u', password: 'p' });
  const r = parseDirectives(c.evaluateChallenge(Buffer.from('realm="zk-sasl-md5",nonce="n",qop="auth",charset=utf-8,algorithm=md5-sess'))!.toString());
  assert.deepEqual(r.get('digest-uri'), ['zookeeper/zk-sasl-md5']);
  assert.deepEqual(r.get('realm'), ['zk-sasl-md5']);
  assert.equal(r.get('cnonce')![0]!.length, 32, '24 random bytes, base64');
});

test('a wrong or missing rspauth fails the exchange: a server that does not know the password cannot pass as one', () => {
  const wrong = rfcClient('imap', 'OA6MHXh6VqTrRk');
  wrong.evaluateChallenge(Buffer.from(IMAP_CHALLENGE));
  assert.throws(
    () => wrong.evaluateChallenge(Buffer.from('rspauth=00000000000000000000000000000000')),
    (e: unknown) => e instanceof SaslMechanismError && /does not match/.test(e.message),
  );
  assert.equal(wrong.isComplete, false);
  assert.throws(() => wrong.evaluateChallenge(Buffer.from('rspauth=ea40f60335c427b5527b84dbabcdfffd')), /no further challenge expected \(exchange failed\)/);
  const missing = rfcClient('imap', 'OA6MHXh6VqTrRk');
  missing.evaluateChallenge(Buffer.from(IMAP_CHALLENGE));
  assert.throws(() => missing.evaluateChallenge(Buffer.alloc(0)), /sent no rspauth/);
});

test('challenges the mechanism refuses, each with the reason', () => {
  const cases: [string, RegExp][] = [
    ['', /empty digest-challenge/],
    ['realm="r",qop="auth",algorithm=md5-sess', /no nonce/],
    ['nonce="n",qop="auth"', /algorithm is missing, expected md5-sess/],
    ['nonce="n",qop="auth",algorithm=md5', /algorithm is md5, expected md5-sess/],
    ['nonce="n",qop="auth-conf",algorithm=md5-sess', /offers qop auth-conf, not auth/],
    ['nonce="n",nonce="m",algorithm=md5-sess', /2 "nonce" directives/],
    ['nonce="n",algorithm=md5-sess,charset=iso-8859-1', /charset is iso-8859-1/],
    ['nonce="n,algorithm=md5-sess', /unterminated quoted string/],
    ['nonce="n" x,algorithm=md5-sess', /expected "," at offset/],
    ['=x', /empty directive name/],
    [`nonce="${'x'.repeat(2100)}",algorithm=md5-sess`, /more than 2048/],
  ];
  for (const [challenge, why] of cases) {
    const c = new DigestMd5Client({ username: 'u', password: 'hunter2-secret' });
    assert.throws(
      () => c.evaluateChallenge(Buffer.from(challenge)),
      (e: unknown) => {
        assert.ok(e instanceof SaslMechanismError, `${challenge}: ${String(e)}`);
        assert.match(e.message, why, challenge);
        assert.ok(!e.message.includes('hunter2-secret'), 'the password is never in a message');
        return true;
      },
    );
  }
});

test('directive lists: LWS, empty elements, escapes and case-insensitive names (RFC 2831 7.1)', () => {
  const d = parseDirectives(' ,Realm = "a\\"b\\\\c" ,, nonce=xyz ,\tqop="auth,auth-int"\r\n, ');
  assert.deepEqual(d.get('realm'), ['a"b\\c']);
  assert.deepEqual(d.get('nonce'), ['xyz']);
  assert.deepEqual(d.get('qop'), ['auth,auth-int']);
  // A quote or backslash in the user name is escaped in the response.
  const c = new DigestMd5Client({ username: 'we"ird\\user', password: 'p' });
  const r = c.evaluateChallenge(Buffer.from('nonce="n",algorithm=md5-sess,charset=utf-8'))!.toString();
  assert.match(r, /username="we\\"ird\\\\user"/);
  assert.deepEqual(parseDirectives(r).get('username'), ['we"ird\\user']);
  assert.equal(parseDirectives(r).get('realm'), undefined, 'no realm offered: none sent (A1 uses the empty string)');
});

test('ISO 8859-1 and UTF-8 (RFC 2831 2.1.2.1): hashed as Java does; outside ISO 8859-1 needs charset=utf-8', () => {
  // "é" fits ISO 8859-1, so the hash uses its one Latin-1 byte even under charset=utf-8:
  // the same response as a Buffer password holding that byte.
  const challenge = Buffer.from('nonce="n",algorithm=md5-sess,charset=utf-8');
  const a = new DigestMd5Client({ username: 'u', password: 'caf\u00e9' }, { cnonce: 'c' }).evaluateChallenge(challenge)!.toString();
  const b = new DigestMd5Client({ username: 'u', password: Buffer.from('caf\u00e9', 'latin1') }, { cnonce: 'c' }).evaluateChallenge(challenge)!.toString();
  assert.equal(parseDirectives(a).get('response')![0], parseDirectives(b).get('response')![0]);
  const noUtf8 = new DigestMd5Client({ username: 'u', password: 'pass\u20ac' });
  assert.throws(() => noUtf8.evaluateChallenge(Buffer.from('nonce="n",algorithm=md5-sess')), /outside ISO 8859-1 and the server did not offer charset=utf-8/);
});

test('credentials are checked up front and invisible to inspect and JSON', () => {
  assert.throws(
    () => new DigestMd5Client({ username: '', password: 'p' }),
    (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'sasl.username',
  );
  assert.throws(
    () => new DigestMd5Client({ username: 'u', password: 3 as unknown as string }),
    (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'sasl.password',
  );
  assert.throws(() => digestMd5Factory(null as unknown as { username: string; password: string }), InvalidArgumentError);
  const secret = 'pw-that-must-not-show-7f3a';
  const c = new DigestMd5Client({ username: 'u', password: secret });
  c.evaluateChallenge(Buffer.from('nonce="n",algorithm=md5-sess'));
  assert.ok(!inspect(c, { showHidden: true, depth: 5 }).includes(secret));
  assert.ok(!JSON.stringify(c).includes(secret));
  // The factory copies a Buffer password: wiping the caller's copy does not break reconnects.
  const pw = Buffer.from('p');
  const make = digestMd5Factory({ username: 'u', password: pw });
  const before = make().evaluateChallenge(Buffer.from('nonce="n",algorithm=md5-sess'));
  pw.fill(0);
  assert.ok(before);
  assert.notEqual(make(), make(), 'a fresh mechanism per connection');
});

/** A reply frame as the server sends it (without the length prefix). */
function reply(xid: number, err: number, token?: Buffer | null): Buffer {
  const w = new JuteWriter(64);
  w.writeInt(xid).writeLong(0n).writeInt(err);
  if (token !== undefined) w.writeBuffer(token);
  return w.toBuffer();
}

test('GetSASLRequest on the wire: length, RequestHeader {xid, 102}, buffer token', () => {
  const f = encodeSaslRequest(7, Buffer.from('abc'));
  assert.equal(f.readInt32BE(0), f.length - 4);
  assert.equal(f.readInt32BE(4), 7);
  assert.equal(f.readInt32BE(8), 102);
  assert.equal(f.readInt32BE(12), 3);
  assert.equal(f.subarray(16).toString(), 'abc');
  assert.deepEqual(decodeSaslReply(reply(7, 0, Buffer.from('tok'))), { xid: 7, err: 0, token: Buffer.from('tok') });
  assert.deepEqual(decodeSaslReply(reply(7, -115)), { xid: 7, err: -115, token: null });
});

test("the exchange: two round trips, then done; the server's refusals map to AuthFailed or SessionClosedRequireSaslAuth", () => {
  const good = new SaslExchange(rfcClient('imap', 'OA6MHXh6VqTrRk'), 'zk1:2281');
  const first = good.start();
  assert.equal(first.readInt32BE(12), 0, 'an empty first token');
  const step1 = good.onReply(reply(1, 0, Buffer.from(IMAP_CHALLENGE)));
  assert.equal(step1.done, false);
  assert.equal(step1.send!.readInt32BE(4), 2, 'the next xid');
  assert.deepEqual(good.onReply(reply(2, 0, Buffer.from('rspauth=ea40f60335c427b5527b84dbabcdfffd'))), { send: null, done: true });
  assert.throws(() => good.onReply(reply(3, 0, Buffer.alloc(0))), ProtocolError);

  const refused = new SaslExchange(new DigestMd5Client({ username: 'u', password: 'p' }), 'zk1:2281');
  refused.start();
  refused.onReply(reply(1, 0, Buffer.from('nonce="n",algorithm=md5-sess')));
  assert.throws(
    () => refused.onReply(reply(2, -115, Buffer.alloc(0))),
    (e: unknown) => e instanceof AuthFailedError && /zk1:2281 refused the credential \(code -115\)/.test(e.message),
  );

  const required = new SaslExchange(new DigestMd5Client({ username: 'u', password: 'p' }), 'zk1:2281');
  required.start();
  assert.throws(() => required.onReply(reply(1, -124)), SessionClosedRequireSaslAuthError);

  const badServer = new SaslExchange(new DigestMd5Client({ username: 'u', password: 'p' }), 'zk1:2281');
  badServer.start();
  assert.throws(
    () => badServer.onReply(reply(1, 0, Buffer.from('nonce="n",algorithm=md5'))),
    (e: unknown) => e instanceof AuthFailedError && /expected md5-sess/.test(e.message),
  );

  const wrongXid = new SaslExchange(new DigestMd5Client({ username: 'u', password: 'p' }), 'zk1:2281');
  wrongXid.start();
  assert.throws(() => wrongXid.onReply(reply(9, 0, Buffer.alloc(0))), /SASL reply xid 9, expected 1/);
  const truncated = new SaslExchange(new DigestMd5Client({ username: 'u', password: 'p' }), 'zk1:2281');
  truncated.start();
  assert.throws(
    () => truncated.onReply(Buffer.from([0, 0, 0, 1])),
    (e: unknown) => e instanceof ProtocolError && /bad SASL reply/.test(e.message),
  );
});
