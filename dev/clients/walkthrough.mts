// The README's walkthrough through openapi-fetch, typed by the types
// openapi-typescript generates from docs/openapi.json (make clients): every
// domain, an idempotent replay, a paged listing and an error body, against a
// running stack. Type-checked with tsc (strict) before it runs (with tsx).
//   API_URL=… TOKEN=… ALICE=… CAROL=… npx tsx dev/clients/walkthrough.mts
import createClient from "openapi-fetch";
import type { paths } from "../../target/clients/ts/schema.d.ts";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const api = env("API_URL");
const as = (token: string) => createClient<paths>({ baseUrl: api, headers: { Authorization: `Bearer ${token}` } });
const admin = as(env("TOKEN"));
const alice = as(env("ALICE"));
const carol = as(env("CAROL"));
const run = Math.random().toString(16).slice(2, 10);
let calls = 0;

function check(what: string, response: Response, status: number): void {
  calls += 1;
  if (response.status !== status) throw new Error(`typescript client: ${what}: ${response.status}, wanted ${status}`);
}
function same<T>(what: string, got: T, want: T): void {
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`typescript client: ${what}: ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
}

// CI-minute packs: register, provision (keyed), replay, read, and an error body.
const ns = 800000 + parseInt(run.slice(0, 4), 16);
{
  const put = await admin.PUT("/namespaces/{id}", { params: { path: { id: ns } }, body: { name: `ts-${run}`, parent_id: null, owner_id: 7 } });
  check("PUT /namespaces/{id}", put.response, 200);
  const body = { packs: [{ number_of_minutes: 10000, expires_at: "2031-01-01", purchase_xid: `ts-${run}` }] };
  const key = { "Idempotency-Key": `ts-${run}` };
  const first = await admin.POST("/namespaces/{id}/minutes", { params: { path: { id: ns }, header: key }, body });
  check("POST /namespaces/{id}/minutes", first.response, 201);
  same("the pack's minutes", first.data?.[0]?.number_of_minutes, 10000);
  const again = await admin.POST("/namespaces/{id}/minutes", { params: { path: { id: ns }, header: key }, body });
  check("the replay", again.response, 201);
  same("Idempotent-Replayed", again.response.headers.get("idempotent-replayed"), "true");
  same("the replay's body", again.data, first.data);
  const listed = await admin.GET("/namespaces/{id}/minutes", { params: { path: { id: ns } } });
  check("GET /namespaces/{id}/minutes", listed.response, 200);
  same("purchased minutes", listed.data?.purchased_minutes, 10000);
  const bad = await admin.POST("/namespaces/{id}/minutes", { params: { path: { id: ns } }, body: { packs: [{ number_of_minutes: -1, expires_at: "2031-01-01" }] } });
  check("an invalid pack", bad.response, 400);
  // An error answer is ours ({"error": …}) or, throttled, the gateway's ({"message": …}).
  const ours = bad.error && "error" in bad.error ? bad.error.error : undefined;
  same("the error's code", ours?.code, 400);
  same("the error's field", ours?.details?.[0]?.field, "packs[0].number_of_minutes");
  same("the error names its request", ours?.request_id, bad.response.headers.get("allotment-request-id"));
}

// Payments: a work period, two payments, listed one a page (the `next` token followed).
{
  const wp = `ts-wp-${run}`;
  const put = await admin.PUT("/work-periods/{id}", { params: { path: { id: wp } }, body: {
    resourceBookingId: "rb-7", userHandle: "alice", startDate: "2026-11-16", endDate: "2026-11-22",
    daysWorked: 5, memberRate: 250.0, customerRate: 310.5, billingAccountId: 80000071 } });
  check("PUT /work-periods/{id}", put.response, 200);
  const paid = await admin.POST("/work-period-payments", { params: { header: { "Idempotency-Key": `ts-pay-${run}` } }, body: { workPeriodId: wp, days: 2 } });
  check("POST /work-period-payments", paid.response, 201);
  same("the amount", paid.data?.amount, 100);
  check("a second payment", (await admin.POST("/work-period-payments", { body: { workPeriodId: wp, days: 1 } })).response, 201);
  const period = await admin.GET("/work-periods/{id}", { params: { path: { id: wp } } });
  check("GET /work-periods/{id}", period.response, 200);
  same("days paid", period.data?.daysPaid, 3);
  const seen: string[] = [];
  let next: string | undefined;
  do {
    const page = await admin.GET("/work-period-payments", { params: { query: { workPeriodId: wp, perPage: 1, ...(next ? { next } : {}) } } });
    check("GET /work-period-payments", page.response, 200);
    seen.push(...(page.data?.items ?? []).map((p) => p.id));
    next = page.data?.next ?? undefined;
  } while (next);
  same("payments listed one a page", seen.length, 2);
}

// Gifts: a project, a deposit, a gift, found and claimed by carol, then refused the second time.
{
  const project = `ts-${run}`;
  check("PUT /projects/{id}", (await admin.PUT("/projects/{id}", { params: { path: { id: project } }, body: { title: "Sandbox", members: [{ username: "alice", role: "PI" }] } })).response, 200);
  const deposit = await admin.POST("/projects/{id}/wallets/deposit", { params: { path: { id: project }, header: { "Idempotency-Key": `ts-fund-${run}` } },
    body: { category: "cpu", provider: "ucloud", amount: 1000 } });
  check("POST deposit", deposit.response, 200);
  same("the balance", deposit.data?.balance, 1000);
  const gift = await alice.POST("/gifts", { body: { resourcesOwnedBy: project, title: "Welcome credits", description: "CPU hours for new users",
    resources: [{ category: "cpu", provider: "ucloud", balanceRequested: 100 }], renewEvery: 0, criteria: [{ type: "email", domain: "example.org" }] } });
  check("POST /gifts", gift.response, 200);
  const id = gift.data?.id ?? 0;
  const found = await carol.GET("/gifts/available");
  check("GET /gifts/available", found.response, 200);
  if (!(found.data?.gifts ?? []).some((g) => g.id === id)) throw new Error(`typescript client: gift ${id} not available to carol`);
  check("POST /gifts/claim", (await carol.POST("/gifts/claim", { body: { giftId: id } })).response, 200);
  const refused = await carol.POST("/gifts/claim", { body: { giftId: id } });
  check("the second claim", refused.response, 409);
  same("the refusal's code", refused.error && "error" in refused.error ? refused.error.error.code : undefined, 409);
}

// Ferry: a product, the customer, the seed's subscription migrated once.
{
  const product = `ts-nl-${run}`;
  check("PUT /ferry/products/{slug}", (await admin.PUT("/ferry/products/{slug}", { params: { path: { slug: product } },
    body: { group: "domain_extensions", name: ".nl domain", prices: [{ contract_period: 36, billing_period: 12, price: 29.95 }] } })).response, 200);
  const customer = `ts-${run}`;
  check("PUT /ferry/customers/{customer}", (await admin.PUT("/ferry/customers/{customer}", { params: { path: { customer } }, body: { reference_customer_id: `ref-${run}` } })).response, 200);
  const body = { reference_customer_id: `ref-${run}`, subscriptions: { domain_extensions: [{
    domain: "customer-domain.co.uk", extension: "co.uk", slug: product, contract_period: 36, billing_period: 12,
    start_date: "2023-01-01", next_contract_date: "2026-01-01", next_billing_date: "2024-01-01",
    reference_subscription_id: `domain-${run}`, reference_product_id: ".nl-domain" }] } };
  const made = await admin.POST("/ferry/customers/{customer}/subscriptions", { params: { path: { customer } }, body });
  check("POST subscriptions", made.response, 200);
  same("created", [made.data?.success.length, made.data?.failures.length], [1, 0]);
  const again = await admin.POST("/ferry/customers/{customer}/subscriptions", { params: { path: { customer } }, body });
  check("the same again", again.response, 200);
  same("skipped", [again.data?.success.length, again.data?.failures.length], [0, 1]);
  const subs = await admin.GET("/ferry/customers/{customer}/subscriptions", { params: { path: { customer } } });
  check("GET subscriptions", subs.response, 200);
  same("subscriptions listed", subs.data?.items.length, 1);
}

console.log(`typescript client: ${calls} calls through openapi-fetch, every answer as the README says`);
