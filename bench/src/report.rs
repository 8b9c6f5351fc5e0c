//! The report: a table on stdout, `target/bench/report.md`, and a chart of
//! throughput against batch size (`target/bench/throughput.png`).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::cost::{listing_floor, units, CostLine};
use crate::Results;

pub struct Target {
    pub name: String,
    pub measured: String,
    pub goal: &'static str,
    pub met: bool,
}

impl Target {
    /// A line that explains a miss rather than states a target.
    pub fn is_context(&self) -> bool {
        self.goal == "context"
    }
}

fn target(name: impl Into<String>, measured: String, goal: &'static str, met: bool) -> Target {
    Target { name: name.into(), measured, goal, met }
}

fn context(name: impl Into<String>, measured: String) -> Target {
    Target { name: name.into(), measured, goal: "context", met: true }
}

pub fn targets(r: &Results) -> Vec<Target> {
    let ceiling = r.ceiling_best();
    let conditional = r.conditional_best();
    let tx = r.ceiling_transact_best();
    let scale = |runs: &[(usize, crate::Run)], b: usize| runs.iter().find(|(s, _)| *s == b).map(|(_, run)| run.ms_per_item());
    let (p100, p1000) = (scale(&r.scaling_packs, 100), scale(&r.scaling_packs, 1000));
    let (q100, q1000) = (scale(&r.scaling_payments, 100), scale(&r.scaling_payments, 1000));
    let (f100, f1000) = (scale(&r.scaling_ferry, 100), scale(&r.scaling_ferry, 1000));
    let growth = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => b / a,
        _ => f64::NAN,
    };
    let pct = |g: f64| format!("{:+.0} %", (g - 1.0) * 100.0);
    let mut out = vec![
        target(
            "new packs vs best conditional ceiling (1b or 1c)",
            format!("{:.2}×", r.new_packs.items_per_s() / conditional),
            "≥ 0.9×",
            r.new_packs.items_per_s() >= 0.9 * conditional,
        ),
        context("(new packs vs unconditional ceiling 1, BatchWriteItem)", format!("{:.2}×", r.new_packs.items_per_s() / ceiling)),
        context(
            "(new packs vs their own raw DynamoDB floor 1e: the xid read that keeps a re-sync write-free, then the puts)",
            format!("{:.2}×", r.new_packs.items_per_s() / r.pack_request_floor),
        ),
        context(
            "(Ferry subscriptions vs the same raw floor 1e: one read of its pair, then its put)",
            format!("{:.2}×", r.ferry.items_per_s() / r.pack_request_floor),
        ),
        context(
            "(CPU of the API process — local front, handler, SDK — per item: new packs, Ferry vs the raw floor 1e; DynamoDB Local runs on the same 2 cores)",
            format!(
                "{:.3}, {:.3} vs {:.3} ms",
                r.new_packs.cpu_ms_per_item(),
                r.ferry.cpu_ms_per_item(),
                r.pack_request_floor_cpu_ms
            ),
        ),
        context(
            "(best conditional ceiling: 1c single PutItems vs 1b transactions of 100)",
            format!("{:.0} vs {:.0} items/s = {:.2}×", r.ceiling_put_best(), tx, r.ceiling_put_best() / tx),
        ),
        target("re-sync writes", format!("{} write requests", r.resync.ddb_writes), "0", r.resync.ddb_writes == 0),
        target(
            "re-sync vs new packs",
            format!("{:.2}×", r.resync.items_per_s() / r.new_packs.items_per_s()),
            "≥ 3×",
            r.resync.items_per_s() >= 3.0 * r.new_packs.items_per_s(),
        ),
        target(
            "bulk payments (2 writes each, in a transaction as the days invariant needs) vs ½ transactional ceiling 1b",
            format!("{:.2}×", r.payments.items_per_s() / (tx / 2.0)),
            "≥ 0.9×",
            r.payments.items_per_s() >= 0.9 * tx / 2.0,
        ),
        target(
            "gift claims (a read, then a 4-action transaction on one gift) vs ¼ claim-shaped ceiling 1d",
            format!("{:.2}×", r.gifts.claims.items_per_s() / (r.ceiling_tx4 / 4.0)),
            "≥ 0.9×",
            r.gifts.claims.items_per_s() >= 0.9 * r.ceiling_tx4 / 4.0,
        ),
        target(
            "Ferry subscriptions (one conditional PutItem each) vs best conditional ceiling",
            format!("{:.2}×", r.ferry.items_per_s() / conditional),
            "≥ 0.9×",
            r.ferry.items_per_s() >= 0.9 * conditional,
        ),
        target("packs per-item time, 1000 vs 100", pct(growth(p100, p1000)), "≤ +25 %", growth(p100, p1000) <= 1.25),
        target("payments per-item time, 1000 vs 100", pct(growth(q100, q1000)), "≤ +25 %", growth(q100, q1000) <= 1.25),
        target("Ferry per-item time, 1000 vs 100", pct(growth(f100, f1000)), "≤ +25 %", growth(f100, f1000) <= 1.25),
        target(
            "single-pack p50 vs raw PutItem p50",
            format!("{:.2}×", r.latency.p50_ms / r.latency.raw_put_p50_ms),
            "≤ 1.5×",
            r.latency.p50_ms <= 1.5 * r.latency.raw_put_p50_ms,
        ),
        context("(single-pack p50 vs its own raw DynamoDB floor)", format!("{:.2}×", r.latency.p50_ms / r.latency.raw_floor_p50_ms)),
        context(
            "(one-round-trip alternative: raw ConditionCheck + Put transaction p50 vs raw PutItem p50)",
            format!("{:.2}×", r.latency.raw_transact_p50_ms / r.latency.raw_put_p50_ms),
        ),
        target(
            "allotment import of packs vs new packs sent directly (scenario 2)",
            format!("{:.2}×", r.import.items_per_s() / r.new_packs.items_per_s()),
            "≥ 0.9×",
            r.import.items_per_s() >= 0.9 * r.new_packs.items_per_s(),
        ),
        target(
            "available gifts: DynamoDB requests, 10 vs 10,000 unrelated gifts",
            r.gifts.available.iter().map(|a| format!("{} at {}", a.run.ddb_requests, a.unrelated)).collect::<Vec<_>>().join(", "),
            "equal",
            r.gifts.available.windows(2).all(|w| w[0].run.ddb_requests == w[1].run.ddb_requests),
        ),
    ];
    for line in cost_lines(r) {
        out.push(target(format!("capacity: {} vs its floor", line.path), format!("{:.2}×", line.ratio()), "≤ 1.25×", line.ratio() <= 1.25));
    }
    // Scale: per-item capacity flat from 1,000 to 10,000 packs; no request near API Gateway's 29 s.
    let per_item = |prefix: &str, n: usize| {
        r.scale.iter().find(|l| l.what.starts_with(&format!("{prefix}, {n} "))).map(|l| crate::cost::cost(l.run.capacity.used) / n as f64)
    };
    let per_item_time = |prefix: &str, n: usize| r.scale.iter().find(|l| l.what.starts_with(&format!("{prefix}, {n} "))).map(|l| l.run.ms_per_item());
    for (prefix, name) in [("GET /namespaces/{id}/minutes", "pack listing"), ("PATCH …/minutes/move/{target}", "move")] {
        let (small, large) = (1000, r.scale.iter().filter(|l| l.what.starts_with(prefix)).map(|l| l.n).max().unwrap_or(0));
        let g = growth(per_item(prefix, small), per_item(prefix, large));
        out.push(target(format!("{name}: capacity per pack, {large} vs {small} packs"), pct(g), "≤ +25 %", g <= 1.25));
        out.push(context(format!("({name}: time per pack, {large} vs {small} packs)"), pct(growth(per_item_time(prefix, small), per_item_time(prefix, large)))));
    }
    let slowest = r.scale.iter().max_by(|a, b| a.slowest_s.total_cmp(&b.slowest_s));
    out.push(target(
        "slowest request of the scale lines (API Gateway gives up at 29 s)",
        slowest.map_or(String::new(), |l| format!("{:.2} s ({})", l.slowest_s, l.what)),
        "< 29 s",
        slowest.is_none_or(|l| l.slowest_s < 29.0),
    ));
    let c = &r.cold;
    let worst = c.functions.iter().max_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    let worst_name = worst.map_or("", |f| f.binary.as_str());
    let cold_ratio = worst.map_or(f64::NAN, |f| f.median_ms / c.baseline.cold_ms);
    out.push(target(
        "cold start vs baseline (load_defaults + default HTTPS client + GetItem), worst function, exec → first response",
        format!("{cold_ratio:.2}× ({worst_name})"),
        "≤ 1.0×",
        cold_ratio <= 1.0,
    ));
    out.push(context(
        "(start-up alone, exec → first poll, worst function vs baseline)",
        format!("{:.2}×", c.functions.iter().map(|f| f.init_ms / c.baseline.init_ms).fold(0.0, f64::max)),
    ));
    out.push(context("(worst function vs hello-world, which does no DynamoDB call)", format!("{:.2}×", worst.map_or(f64::NAN, |f| f.median_ms / c.hello_ms))));
    out.push(context(
        "(DynamoDB Local's cost of a first request's fresh connection, vs the baseline's whole cold start)",
        format!("{:.2}×", (c.ddb_fresh_connection_ms - c.ddb_pooled_connection_ms) / c.baseline.cold_ms),
    ));
    out.push(target(
        "peak RSS serving 1000 packs",
        format!("{:.1} MiB", c.peak_rss_kib as f64 / 1024.0),
        "≤ 64 MiB",
        c.peak_rss_kib <= 64 * 1024,
    ));
    if let Some((binary, kib, status)) = c.hostile_peaks.iter().max_by_key(|(_, kib, _)| *kib) {
        out.push(target(
            format!("peak RSS of any function for a 5.8 MB body (worst: {binary}, answered {status})"),
            format!("{:.1} MiB", *kib as f64 / 1024.0),
            "≤ 64 MiB",
            *kib <= 64 * 1024,
        ));
    }
    out
}

/// Every path's capacity per item beside its floor (see `cost.rs`).
pub fn cost_lines(r: &Results) -> Vec<CostLine> {
    let batch = r.batch.max(1) as f64;
    let scale = |prefix: &str| r.scale.iter().find(|l| l.what.starts_with(prefix));
    let mut lines = vec![
        CostLine {
            path: format!("new packs, {batch:.0} a request (scenario 2)"),
            per: "pack",
            run: r.new_packs.clone(),
            floor: units(0.5 / batch, 2.0),
            floor_why: "one conditional put of the pack + its listing-index entry; the namespace read once a request",
        },
        CostLine {
            path: "re-sync of the same packs (scenario 3)".into(),
            per: "pack",
            run: r.resync.clone(),
            floor: units(0.5 + 0.5 / batch, 0.0),
            floor_why: "one eventually consistent read of the pack, no write",
        },
        CostLine {
            path: "single-pack POST (scenario 6)".into(),
            per: "pack",
            run: r.latency.api.clone(),
            floor: units(0.5, 2.0),
            floor_why: "the namespace read, one conditional put + its index entry",
        },
        CostLine {
            path: "bulk payments, 1000 a request (scenario 4)".into(),
            per: "payment",
            run: r.payments.clone(),
            floor: units(0.5, 8.0),
            floor_why: "a transaction (the days invariant ties the payment to its work period's days): the payment + its 2 listing indexes and the work period, each written twice; the work period read",
        },
        CostLine {
            path: "single payment POST".into(),
            per: "payment",
            run: r.single_payments.clone(),
            floor: units(0.5, 8.0),
            floor_why: "as bulk payments",
        },
        CostLine {
            path: "gift claim, distinct users, one gift (scenario 8)".into(),
            per: "claim",
            run: r.gifts.claims.clone(),
            floor: units(0.5, 10.0),
            floor_why: "a transaction: claim + its index entry, owner debit, claimant credit, gift check, each written twice; the gift read",
        },
        CostLine {
            path: "Ferry, 1000 subscriptions a request (scenario 9)".into(),
            per: "subscription",
            run: r.ferry.clone(),
            floor: units(1.0 / 1000.0, 2.0),
            floor_why: "one conditional put of an item keyed by the reference pair, carrying its placeholder, + its customer-index entry; customer and product read once a request",
        },
    ];
    if let Some(a) = r.gifts.available.last() {
        lines.push(CostLine {
            path: format!("GET /gifts/available, {} unrelated gifts, {} shown", a.unrelated, a.shown),
            per: "request",
            run: a.run.clone(),
            floor: units(0.5 * 2.0 + 0.5 + 1.0 * a.shown as f64, 0.0),
            floor_why: "one Query of each criterion partition the caller can match (anyone, their e-mail domain), one of their claims, one strongly consistent read of each gift shown (the index lags a delete; this read keeps a gift being deleted out of the listing)",
        });
    }
    for (prefix, per, why) in [
        ("GET /namespaces/{id}/minutes, 1000", "pack", "one eventually consistent Query of the packs"),
        ("PATCH …/minutes/move/{target}, 1000", "pack", "per pack a conditional update + its index entry moved (delete + put); the packs listed once"),
        ("GET /work-period-payments?workPeriodId=", "payment", "one eventually consistent Query of the payments"),
        ("GET /ferry/customers/{customer}/subscriptions", "subscription", "one eventually consistent Query of the subscriptions"),
        ("POST …/subscriptions again", "subscription", "one eventually consistent read per reference pair, no write"),
        ("GET /work-periods/{id}", "request", "one strongly consistent read of the work period (its aggregates are kept on it; a billing system reads back what it just paid)"),
    ] {
        let Some(line) = scale(prefix) else { continue };
        let listing = listing_floor(&line.run, line.n);
        let floor = match per {
            "request" => units(1.0, 0.0),
            _ if prefix.starts_with("PATCH") => units(listing, 3.0),
            _ if prefix.starts_with("POST") => units(0.5, 0.0),
            _ => units(listing, 0.0),
        };
        lines.push(CostLine { path: line.what.clone(), per, run: line.run.clone(), floor, floor_why: why });
    }
    lines
}

/// The capacity table.
pub fn cost_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| capacity per item | RCU | WCU | floor RCU | floor WCU | × floor (1 RCU = 0.2 WCU) | source | calls compared: agree | floor: what any design must do |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---|---:|---|");
    let lines = cost_lines(r);
    for line in &lines {
        let m = line.measured();
        let c = &line.run.capacity;
        let _ = writeln!(
            t,
            "| {} (per {}) | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {} | {}: {} | {} |",
            line.path,
            line.per,
            m.read,
            m.write,
            line.floor.read,
            line.floor.write,
            line.ratio(),
            c.source(),
            c.compared,
            c.agreed,
            line.floor_why
        );
    }
    let (compared, agreed) = lines.iter().fold((0, 0), |(c, a), l| (c + l.run.capacity.compared, a + l.run.capacity.agreed));
    let mut disagreements: Vec<&String> = lines.iter().flat_map(|l| &l.run.capacity.disagreements).collect();
    disagreements.sort();
    disagreements.dedup();
    let largest = lines.iter().map(|l| l.run.capacity.largest_item).max().unwrap_or(0);
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Source: \"Local\" = DynamoDB Local's ReturnConsumedCapacity; \"rules\" = AWS's sizing rules, used where Local is not faithful \
         (failed conditional writes, transactions of more than one action, ConditionCheck actions, empty Queries, \
         BatchGetItem keys not found). Where both exist they were compared: \
         {agreed} of {compared} calls agree{}. Largest item written or read: {largest} bytes.",
        if disagreements.is_empty() { String::new() } else { format!("; disagreements: {}", disagreements.iter().map(|d| d.as_str()).collect::<Vec<_>>().join("; ")) }
    );
    t
}

/// The scale table.
pub fn scale_table(r: &Results) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| scale line | items | API requests | time, s | slowest request, s | ms/item | DynamoDB req | RCU/item | WCU/item |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows: Vec<(String, usize, usize, f64, f64, &crate::Run)> =
        r.scale.iter().map(|l| (l.what.clone(), l.n, l.requests, l.run.seconds, l.slowest_s, &l.run)).collect();
    for a in &r.gifts.available {
        rows.push((format!("GET /gifts/available, {} unrelated gifts ({} shown)", a.unrelated, a.shown), 1, 1, a.run.seconds, a.run.seconds, &a.run));
    }
    for (what, n, requests, seconds, slowest, run) in rows {
        let n = n.max(1) as f64;
        let _ = writeln!(
            t,
            "| {what} | {} | {requests} | {seconds:.3} | {slowest:.3} | {:.4} | {} | {:.4} | {:.4} |",
            n as usize,
            seconds * 1000.0 / n,
            run.ddb_requests,
            run.capacity.used.read / n,
            run.capacity.used.write / n
        );
    }
    t
}

pub fn table(r: &Results) -> String {
    let mut t = String::new();
    let ceiling = r.ceiling_best();
    let _ = writeln!(t, "Allotment bench ({} build{}), DynamoDB Local, one run", r.profile, if r.quick { ", --quick sizes" } else { "" });
    let _ = writeln!(t);
    let _ = writeln!(t, "| scenario | items | items/s | × ceiling | ms/item | DynamoDB req/item | write req | API process CPU ms/item |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (c, v) in &r.ceiling {
        let _ = writeln!(t, "| 1. ceiling: raw BatchWriteItem ×25, concurrency {c} | | {v:.0} | {:.2} | | 0.04 | | |", v / ceiling);
    }
    for (c, v) in &r.ceiling_transact {
        let _ = writeln!(
            t,
            "| 1b. conditional ceiling: raw TransactWriteItems ×100 attribute_not_exists, concurrency {c} | | {v:.0} | {:.2} | | 0.01 | | |",
            v / ceiling
        );
    }
    for (c, v) in &r.ceiling_put {
        let _ = writeln!(
            t,
            "| 1c. conditional ceiling: raw PutItem attribute_not_exists, concurrency {c} | | {v:.0} | {:.2} | | 1.00 | | |",
            v / ceiling
        );
    }
    let _ = writeln!(
        t,
        "| 1d. claim-shaped ceiling: raw GetItem, then TransactWriteItems ×4 attribute_not_exists, concurrency 8 | | {:.0} | {:.2} | | 0.50 | | |",
        r.ceiling_tx4,
        r.ceiling_tx4 / ceiling
    );
    let _ = writeln!(
        t,
        "| 1e. new-pack request floor: raw BatchGetItem of its {} xids (eventually consistent), then its conditional PutItems 16 at once | | {:.0} | {:.2} | | 1.01 | | {:.3} |",
        r.batch,
        r.pack_request_floor,
        r.pack_request_floor / ceiling,
        r.pack_request_floor_cpu_ms
    );
    let row = |t: &mut String, name: &str, run: &crate::Run| {
        let _ = writeln!(
            t,
            "| {name} | {} | {:.0} | {:.2} | {:.3} | {:.3} | {} | {:.3} |",
            run.items,
            run.items_per_s(),
            run.items_per_s() / ceiling,
            run.ms_per_item(),
            run.requests_per_item(),
            run.ddb_writes,
            run.cpu_ms_per_item()
        );
    };
    row(&mut t, "2. new packs (POST /namespaces/{id}/minutes)", &r.new_packs);
    row(&mut t, "3. re-sync (same requests again)", &r.resync);
    row(&mut t, "4. bulk payments (POST /work-period-payments/bulk)", &r.payments);
    for (b, run) in &r.scaling_packs {
        row(&mut t, &format!("5. packs, batch {b}"), run);
    }
    for (b, run) in &r.scaling_payments {
        row(&mut t, &format!("5. payments, batch {b}"), run);
    }
    row(&mut t, "8. gift claims (POST /gifts/claim), distinct users, one gift, 8 at once", &r.gifts.claims);
    row(&mut t, "9. Ferry (POST /ferry/customers/{customer}/subscriptions), ssl: one conditional PutItem each", &r.ferry);
    for (b, run) in &r.scaling_ferry {
        row(&mut t, &format!("9. Ferry, batch {b}"), run);
    }
    row(&mut t, "10. allotment import packs (50 namespaces, 1000 a request, 4 at once), the command as a process", &r.import);
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "6. latency, single-pack POST: p50 {:.2} ms, p99 {:.2} ms; raw conditional PutItem p50 {:.2} ms; \
         raw BatchGetItem (namespace + xid) then conditional PutItem — the handler's own DynamoDB floor — p50 {:.2} ms; \
         raw TransactWriteItems (ConditionCheck namespace + conditional Put) — the one-round-trip alternative — p50 {:.2} ms",
        r.latency.p50_ms, r.latency.p99_ms, r.latency.raw_put_p50_ms, r.latency.raw_floor_p50_ms, r.latency.raw_transact_p50_ms
    );
    let _ = writeln!(t);
    let e = &r.events;
    let _ = writeln!(
        t,
        "12. domain events: {} stream records ({} events) read from DynamoDB Local's stream at {:.0} records/s, \
         mapped and published to a local stand-in bus at {:.0} records/s, {:.3} PutEvents calls per record",
        e.records, e.events, e.read_per_s, e.publish_per_s, e.calls_per_record
    );
    let _ = writeln!(t);
    t.push_str(&cost_table(r));
    let _ = writeln!(t);
    t.push_str(&scale_table(r));
    let _ = writeln!(t);
    t.push_str(&cold_table(&r.cold));
    let _ = writeln!(t);
    let _ = writeln!(t, "Peak RSS of post-minutes serving one 1000-pack request: {:.1} MiB", r.cold.peak_rss_kib as f64 / 1024.0);
    let _ = writeln!(t);
    let _ = writeln!(t, "| peak RSS for a 5.8 MB body (worst of an array of zeros and one long string) | MiB | status |");
    let _ = writeln!(t, "|---|---:|---:|");
    for (binary, kib, status) in &r.cold.hostile_peaks {
        let _ = writeln!(t, "| {binary} | {:.1} | {status} |", *kib as f64 / 1024.0);
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "| target | measured | goal | |");
    let _ = writeln!(t, "|---|---:|---:|---|");
    for target in targets(r) {
        let verdict = if target.is_context() {
            "(explains the line above)"
        } else if r.quick {
            "(not judged in --quick)"
        } else if target.met {
            "met"
        } else {
            "MISSED"
        };
        let _ = writeln!(t, "| {} | {} | {} | {verdict} |", target.name, target.measured, target.goal);
    }
    t
}

pub fn write(r: &Results, table: &str, dir: &Path) -> Result<(), String> {
    let png = dir.join("throughput.png");
    chart(r, &png)?;
    let md = format!("# Allotment benchmark\n\n{table}\n![throughput against batch size](throughput.png)\n");
    std::fs::write(dir.join("report.md"), md).map_err(|e| e.to_string())
}

fn chart(r: &Results, path: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ceiling = r.ceiling_best();
    let max_y = r
        .scaling_packs
        .iter()
        .chain(&r.scaling_payments)
        .map(|(_, run)| run.items_per_s())
        .fold(ceiling, f64::max)
        * 1.15;
    let max_x = r.scaling_packs.iter().map(|(b, _)| *b).max().unwrap_or(1000).max(10) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Items/s against batch size (DynamoDB Local)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..max_x).log_scale(), 0f64..max_y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("items per request")
        .y_desc("items/s")
        .draw()
        .map_err(|e| e.to_string())?;
    let series = |runs: &[(usize, crate::Run)]| runs.iter().map(|(b, run)| (*b as f64, run.items_per_s())).collect::<Vec<_>>();
    chart
        .draw_series(LineSeries::new(series(&r.scaling_packs), BLUE.stroke_width(3)))
        .map_err(|e| e.to_string())?
        .label("new packs")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(series(&r.scaling_payments), GREEN.stroke_width(3)))
        .map_err(|e| e.to_string())?
        .label("bulk payments")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(vec![(1.0, ceiling), (max_x, ceiling)], RED.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label("ceiling: raw BatchWriteItem")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Scenario 7's table (also printed alone by `allotment-bench --cold-only`).
pub fn cold_table(c: &crate::coldstart::ColdStarts) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| 7. cold start (median) | exec → first response, ms | × baseline | × hello | start-up: exec → first poll, ms | start-up × baseline | \
         first invocation, ms | same event warm, ms | stripped size | sample's status |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let b = &c.baseline;
    let row = |name: &str, cold: f64, init: f64, warm: f64, bytes: u64, status: &str| {
        format!(
            "| {name} | {cold:.1} | {:.2} | {:.2} | {init:.1} | {:.2} | {:.1} | {warm:.2} | {:.1} MiB | {status} |",
            cold / b.cold_ms,
            cold / c.hello_ms,
            init / b.init_ms,
            cold - init,
            bytes as f64 / 1048576.0
        )
    };
    let _ = writeln!(t, "{}", row("baseline: load_defaults + default HTTPS client + GetItem", b.cold_ms, b.init_ms, b.warm_ms, c.baseline_bytes, "200"));
    let _ = writeln!(t, "{}", row("hello-world lambda_runtime", c.hello_ms, c.hello_init_ms, c.hello_warm_ms, c.hello_bytes, ""));
    for f in &c.functions {
        let _ = writeln!(t, "{}", row(&f.binary, f.median_ms, f.init_ms, f.warm_ms, f.stripped_bytes, &f.status.to_string()));
    }
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "DynamoDB Local, raw GetItem (no SDK): {:.2} ms on a fresh connection, {:.2} ms on a pooled one",
        c.ddb_fresh_connection_ms, c.ddb_pooled_connection_ms
    );
    t
}
