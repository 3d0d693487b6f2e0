// Checks a Hambastegi node's Mastodon client API with npm's `masto` (what Elk and Phanpy
// use): the instance, a login with a token, the home timeline page by page.
// Run by run.py beside this file (it starts a node and makes the token); by hand:
//   npm install && node check.mjs BASE_URL ACCESS_TOKEN EXPECTED_POSTS
import assert from "node:assert/strict";
import { createRestAPIClient } from "masto";

const [url, accessToken, expected] = process.argv.slice(2);
const anonymous = createRestAPIClient({ url });
const instance = await anonymous.v2.instance.fetch();
assert.match(instance.version, /^4\.5\.0 \(compatible; Hambastegi /);
assert.ok(instance.configuration.statuses.maxCharacters > 0);

const masto = createRestAPIClient({ url, accessToken });
const me = await masto.v1.accounts.verifyCredentials();
assert.equal(me.group, true);

const seen = [];
let pages = 0;
for await (const page of masto.v1.timelines.home.list({ limit: 2 })) {
  if (page.length === 0) break;
  pages += 1;
  seen.push(...page.map((status) => status.id));
}
assert.equal(seen.length, Number(expected), `home timeline: ${seen.length} posts`);
assert.equal(new Set(seen).size, seen.length, "no post twice across pages");
assert.ok(pages >= Math.ceil(Number(expected) / 2), "followed the Link header");
const sorted = [...seen].sort((a, b) => (BigInt(b) > BigInt(a) ? 1 : -1));
assert.deepEqual(seen, sorted, "newest first");
console.log(JSON.stringify({ ok: true, account: me.acct, posts: seen.length, pages }));
