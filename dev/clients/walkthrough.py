"""The README's walkthrough through the Python client openapi-python-client
generates from docs/openapi.json (make clients): every domain, an idempotent
replay, a paged listing and an error body, against a running stack.

    API_URL=… TOKEN=… ALICE=… CAROL=… python3 dev/clients/walkthrough.py target/clients/python

Each step checks the answer's status and what the generated models parsed;
the first mismatch exits 1.
"""
import sys
import uuid
from os import environ

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "target/clients/python")

from allotment_client import AuthenticatedClient  # noqa: E402
from allotment_client.api.ci_minute_packs import get_minutes, post_minutes, put_namespace  # noqa: E402
from allotment_client.api.ferry import list_ferry_subscriptions, post_ferry_subscriptions, put_ferry_customer, put_ferry_product  # noqa: E402
from allotment_client.api.gifts import available_gifts, claim_gift, deposit_wallet, get_my_wallets, post_gift, put_project  # noqa: E402
from allotment_client.api.work_period_payments import get_work_period, list_payments, post_payment, put_work_period  # noqa: E402
from allotment_client.models import (  # noqa: E402
    ClaimGiftBody, DepositInput, Error, GiftInput, MigrationRequest, NamespaceInput, PaymentInput, PostMinutesBody,
    ProductInput, ProjectInput, PutFerryCustomerBody, WorkPeriodInput,
)

API = environ["API_URL"]
run = uuid.uuid4().hex[:8]
admin = AuthenticatedClient(base_url=API, token=environ["TOKEN"])
alice = AuthenticatedClient(base_url=API, token=environ["ALICE"])
carol = AuthenticatedClient(base_url=API, token=environ["CAROL"])
steps = 0


def check(what, answer, status):
    global steps
    steps += 1
    if answer.status_code != status:
        sys.exit(f"python client: {what}: {answer.status_code}, wanted {status}: {answer.content!r}")
    return answer.parsed


def same(what, got, want):
    if got != want:
        sys.exit(f"python client: {what}: {got!r}, wanted {want!r}")


# CI-minute packs: register, provision (keyed), replay, read, and an error body.
ns = 700000 + int(run[:4], 16)
check("PUT /namespaces/{id}", put_namespace.sync_detailed(ns, client=admin, body=NamespaceInput.from_dict({"name": f"py-{run}", "parent_id": None, "owner_id": 7})), 200)
pack = PostMinutesBody.from_dict({"packs": [{"number_of_minutes": 10000, "expires_at": "2031-01-01", "purchase_xid": f"py-{run}"}]})
first = post_minutes.sync_detailed(ns, client=admin, body=pack, idempotency_key=f"py-{run}")
packs = check("POST /namespaces/{id}/minutes", first, 201)
same("the pack's minutes", packs[0].number_of_minutes, 10000)
again = post_minutes.sync_detailed(ns, client=admin, body=pack, idempotency_key=f"py-{run}")
check("the replay", again, 201)
same("Idempotent-Replayed", again.headers.get("idempotent-replayed"), "true")
same("the replay's body", again.content, first.content)
listed = check("GET /namespaces/{id}/minutes", get_minutes.sync_detailed(ns, client=admin), 200)
same("purchased minutes", listed.purchased_minutes, 10000)
bad = PostMinutesBody.from_dict({"packs": [{"number_of_minutes": -1, "expires_at": "2031-01-01"}]})
error = check("an invalid pack", post_minutes.sync_detailed(ns, client=admin, body=bad), 400)
if not isinstance(error, Error) or error.error.code != 400 or not error.error.details:
    sys.exit(f"python client: the error body was not parsed: {error!r}")
same("the error's field", error.error.details[0].field, "packs[0].number_of_minutes")

# Payments: a work period, two payments, listed one a page (the `next` token followed).
wp = f"py-wp-{run}"
period = WorkPeriodInput.from_dict({"resourceBookingId": "rb-7", "userHandle": "alice", "startDate": "2026-11-16", "endDate": "2026-11-22",
                                    "daysWorked": 5, "memberRate": 250.00, "customerRate": 310.50, "billingAccountId": 80000071})
check("PUT /work-periods/{id}", put_work_period.sync_detailed(wp, client=admin, body=period), 200)
paid = check("POST /work-period-payments", post_payment.sync_detailed(client=admin, body=PaymentInput.from_dict({"workPeriodId": wp, "days": 2}), idempotency_key=f"py-pay-{run}"), 201)
same("the amount", str(paid.amount), "100.0")
check("a second payment", post_payment.sync_detailed(client=admin, body=PaymentInput.from_dict({"workPeriodId": wp, "days": 1})), 201)
same("days paid", check("GET /work-periods/{id}", get_work_period.sync_detailed(wp, client=admin), 200).days_paid, 3)
seen, token = [], None
while True:
    kwargs = {"work_period_id": wp, "per_page": 1}
    if token:
        kwargs["next_"] = token
    page = check("GET /work-period-payments", list_payments.sync_detailed(client=admin, **kwargs), 200)
    seen += [p.id for p in page.items]
    token = page.next_ if isinstance(page.next_, str) else None
    if not token:
        break
same("payments listed one a page", len(seen), 2)

# Gifts: a project, a deposit, a gift, found and claimed by carol, then refused the second time.
project = f"py-{run}"
check("PUT /projects/{id}", put_project.sync_detailed(project, client=admin, body=ProjectInput.from_dict({"title": "Sandbox", "members": [{"username": "alice", "role": "PI"}]})), 200)
wallet = check("POST deposit", deposit_wallet.sync_detailed(project, client=admin, body=DepositInput.from_dict({"category": "cpu", "provider": "ucloud", "amount": 1000}), idempotency_key=f"py-fund-{run}"), 200)
same("the balance", wallet.balance, 1000)
gift = check("POST /gifts", post_gift.sync_detailed(client=alice, body=GiftInput.from_dict({
    "resourcesOwnedBy": project, "title": "Welcome credits", "description": "CPU hours for new users",
    "resources": [{"category": "cpu", "provider": "ucloud", "balanceRequested": 100}],
    "renewEvery": 0, "criteria": [{"type": "email", "domain": "example.org"}]})), 200)
found = check("GET /gifts/available", available_gifts.sync_detailed(client=carol), 200)
if gift.id not in [g.id for g in found.gifts]:
    sys.exit(f"python client: gift {gift.id} not available to carol: {found!r}")
check("POST /gifts/claim", claim_gift.sync_detailed(client=carol, body=ClaimGiftBody.from_dict({"giftId": gift.id})), 200)
refused = check("the second claim", claim_gift.sync_detailed(client=carol, body=ClaimGiftBody.from_dict({"giftId": gift.id})), 409)
same("the refusal's code", refused.error.code, 409)
mine = check("GET /me/wallets", get_my_wallets.sync_detailed(client=carol), 200)
if not any(w.category == "cpu" and w.balance >= 100 for w in mine.wallets):
    sys.exit(f"python client: carol's wallet: {mine!r}")

# Ferry: a product, the customer, the seed's subscription migrated once.
product = f"py-nl-{run}"
check("PUT /ferry/products/{slug}", put_ferry_product.sync_detailed(product, client=admin, body=ProductInput.from_dict(
    {"group": "domain_extensions", "name": ".nl domain", "prices": [{"contract_period": 36, "billing_period": 12, "price": 29.95}]})), 200)
customer = f"py-{run}"
check("PUT /ferry/customers/{customer}", put_ferry_customer.sync_detailed(customer, client=admin, body=PutFerryCustomerBody.from_dict({"reference_customer_id": f"ref-{run}"})), 200)
migration = MigrationRequest.from_dict({"reference_customer_id": f"ref-{run}", "subscriptions": {"domain_extensions": [{
    "domain": "customer-domain.co.uk", "extension": "co.uk", "slug": product, "contract_period": 36, "billing_period": 12,
    "start_date": "2023-01-01", "next_contract_date": "2026-01-01", "next_billing_date": "2024-01-01",
    "reference_subscription_id": f"domain-{run}", "reference_product_id": ".nl-domain"}]}})
made = check("POST subscriptions", post_ferry_subscriptions.sync_detailed(customer, client=admin, body=migration), 200)
same("created", (len(made.success), len(made.failures)), (1, 0))
again = check("the same again", post_ferry_subscriptions.sync_detailed(customer, client=admin, body=migration), 200)
same("skipped", (len(again.success), len(again.failures)), (0, 1))
subs = check("GET subscriptions", list_ferry_subscriptions.sync_detailed(customer, client=admin), 200)
same("subscriptions listed", len(subs.items), 1)

print(f"python client: {steps} calls through the generated client, every answer as the README says")
