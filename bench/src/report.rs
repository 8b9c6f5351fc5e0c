//! The report: a table on stdout, `target/bench/report.md`, and a chart of
//! throughput against batch size (`target/bench/throughput.png`).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::Results;

pub struct Target {
    pub name: &'static str,
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

pub fn targets(r: &Results) -> Vec<Target> {
    let ceiling = r.ceiling_best();
    let scale = |runs: &[(usize, crate::Run)], b: usize| runs.iter().find(|(s, _)| *s == b).map(|(_, run)| run.ms_per_item());
    let (p100, p1000) = (scale(&r.scaling_packs, 100), scale(&r.scaling_packs, 1000));
    let (q100, q1000) = (scale(&r.scaling_payments, 100), scale(&r.scaling_payments, 1000));
    let growth = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => b / a,
        _ => f64::NAN,
    };
    let c = &r.cold;
    let worst = c.functions.iter().max_by(|a, b| a.median_ms.total_cmp(&b.median_ms));
    let cold_ratio = worst.map_or(f64::NAN, |f| f.median_ms / c.hello_ms);
    let worst_name = worst.map_or("", |f| f.binary.as_str());
    let startup_ratio = c.functions.iter().map(|f| f.init_ms / c.hello_init_ms).fold(0.0, f64::max);
    vec![
        Target {
            name: "new packs vs ceiling",
            measured: format!("{:.2}×", r.new_packs.items_per_s() / ceiling),
            goal: "≥ 0.6×",
            met: r.new_packs.items_per_s() >= 0.6 * ceiling,
        },
        Target {
            name: "(new packs vs conditional ceiling 1b)",
            measured: format!("{:.2}×", r.new_packs.items_per_s() / r.ceiling_transact_best()),
            goal: "context",
            met: true,
        },
        Target {
            name: "re-sync writes",
            measured: format!("{} write requests", r.resync.ddb_writes),
            goal: "0",
            met: r.resync.ddb_writes == 0,
        },
        Target {
            name: "re-sync vs new packs",
            measured: format!("{:.2}×", r.resync.items_per_s() / r.new_packs.items_per_s()),
            goal: "≥ 3×",
            met: r.resync.items_per_s() >= 3.0 * r.new_packs.items_per_s(),
        },
        Target {
            name: "bulk payments vs ceiling",
            measured: format!("{:.2}×", r.payments.items_per_s() / ceiling),
            goal: "≥ 0.4×",
            met: r.payments.items_per_s() >= 0.4 * ceiling,
        },
        Target {
            name: "(bulk payments, 2 conditional writes each, vs ½ conditional ceiling 1b)",
            measured: format!("{:.2}×", r.payments.items_per_s() / (r.ceiling_transact_best() / 2.0)),
            goal: "context",
            met: true,
        },
        Target {
            name: "packs per-item time, 1000 vs 100",
            measured: format!("{:+.0} %", (growth(p100, p1000) - 1.0) * 100.0),
            goal: "≤ +25 %",
            met: growth(p100, p1000) <= 1.25,
        },
        Target {
            name: "payments per-item time, 1000 vs 100",
            measured: format!("{:+.0} %", (growth(q100, q1000) - 1.0) * 100.0),
            goal: "≤ +25 %",
            met: growth(q100, q1000) <= 1.25,
        },
        Target {
            name: "single-pack p50 vs raw PutItem p50",
            measured: format!("{:.2}×", r.latency.p50_ms / r.latency.raw_put_p50_ms),
            goal: "≤ 1.5×",
            met: r.latency.p50_ms <= 1.5 * r.latency.raw_put_p50_ms,
        },
        Target {
            name: "(single-pack p50 vs its own raw DynamoDB floor)",
            measured: format!("{:.2}×", r.latency.p50_ms / r.latency.raw_floor_p50_ms),
            goal: "context",
            met: true,
        },
        Target {
            name: "(one-round-trip alternative: raw ConditionCheck + Put transaction p50 vs raw PutItem p50)",
            measured: format!("{:.2}×", r.latency.raw_transact_p50_ms / r.latency.raw_put_p50_ms),
            goal: "context",
            met: true,
        },
        Target {
            name: "cold start vs hello-world (worst function)",
            measured: format!("{cold_ratio:.2}× ({worst_name})"),
            goal: "≤ 2×",
            met: cold_ratio <= 2.0,
        },
        Target {
            name: "(start-up alone, exec → first poll for an event, worst function vs hello)",
            measured: format!("{startup_ratio:.2}×"),
            goal: "context",
            met: true,
        },
        Target {
            name: "(that worst function's sample answered warm, vs hello's whole cold start)",
            measured: format!("{:.2}×", worst.map_or(f64::NAN, |f| f.warm_ms / c.hello_ms)),
            goal: "context",
            met: true,
        },
        Target {
            name: "(DynamoDB Local's cost of a first request's fresh connection, vs hello's whole cold start)",
            measured: format!("{:.2}×", (c.ddb_fresh_connection_ms - c.ddb_pooled_connection_ms) / c.hello_ms),
            goal: "context",
            met: true,
        },
        Target {
            name: "(gift claims of distinct users on one gift vs conditional ceiling 1b)",
            measured: format!("{:.2}×", r.gifts.claims.items_per_s() / r.ceiling_transact_best()),
            goal: "context",
            met: true,
        },
        Target {
            name: "(Ferry subscriptions, 3 conditional writes each, vs ⅓ conditional ceiling 1b)",
            measured: format!("{:.2}×", r.ferry.items_per_s() / (r.ceiling_transact_best() / 3.0)),
            goal: "context",
            met: true,
        },
        Target {
            name: "Ferry per-item time, 1000 vs 100",
            measured: format!("{:+.0} %", (growth(scale(&r.scaling_ferry, 100), scale(&r.scaling_ferry, 1000)) - 1.0) * 100.0),
            goal: "≤ +25 %",
            met: growth(scale(&r.scaling_ferry, 100), scale(&r.scaling_ferry, 1000)) <= 1.25,
        },
        Target {
            name: "allotment import of packs vs new packs sent directly (scenario 2)",
            measured: format!("{:.2}×", r.import.items_per_s() / r.new_packs.items_per_s()),
            goal: "≥ 0.9×",
            met: r.import.items_per_s() >= 0.9 * r.new_packs.items_per_s(),
        },
        Target {
            name: "available gifts: DynamoDB requests, 10 vs 10,000 unrelated gifts",
            measured: r.gifts.available.iter().map(|(n, run)| format!("{} at {n}", run.ddb_requests)).collect::<Vec<_>>().join(", "),
            goal: "equal",
            met: r.gifts.available.windows(2).all(|w| w[0].1.ddb_requests == w[1].1.ddb_requests),
        },
        Target {
            name: "peak RSS serving 1000 packs",
            measured: format!("{:.1} MiB", r.cold.peak_rss_kib as f64 / 1024.0),
            goal: "≤ 64 MiB",
            met: r.cold.peak_rss_kib <= 64 * 1024,
        },
    ]
}

pub fn table(r: &Results) -> String {
    let mut t = String::new();
    let ceiling = r.ceiling_best();
    let _ = writeln!(t, "Allotment bench ({} build{}), DynamoDB Local, one run", r.profile, if r.quick { ", --quick sizes" } else { "" });
    let _ = writeln!(t);
    let _ = writeln!(t, "| scenario | items | items/s | × ceiling | ms/item | DynamoDB req/item | write req |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|");
    for (c, v) in &r.ceiling {
        let _ = writeln!(t, "| 1. ceiling: raw BatchWriteItem ×25, concurrency {c} | | {v:.0} | {:.2} | | 0.04 | |", v / ceiling);
    }
    for (c, v) in &r.ceiling_transact {
        let _ = writeln!(
            t,
            "| 1b. conditional ceiling: raw TransactWriteItems ×100 attribute_not_exists, concurrency {c} | | {v:.0} | {:.2} | | 0.01 | |",
            v / ceiling
        );
    }
    let row = |t: &mut String, name: &str, run: &crate::Run| {
        let _ = writeln!(
            t,
            "| {name} | {} | {:.0} | {:.2} | {:.3} | {:.3} | {} |",
            run.items,
            run.items_per_s(),
            run.items_per_s() / ceiling,
            run.ms_per_item(),
            run.requests_per_item(),
            run.ddb_writes
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
    row(&mut t, "9. Ferry (POST /ferry/customers/{customer}/subscriptions), ssl: 3 conditional writes each", &r.ferry);
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
    t.push_str(&cold_table(&r.cold));
    let _ = writeln!(t);
    let _ = writeln!(t, "Peak RSS of post-minutes serving one 1000-pack request: {:.1} MiB", r.cold.peak_rss_kib as f64 / 1024.0);
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
        "| 7. cold start (median) | exec → first response, ms | × hello | start-up: exec → first poll, ms | start-up × hello | \
         first invocation, ms | same event warm, ms | stripped size | sample's status |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, cold: f64, init: f64, warm: f64, bytes: u64, status: &str| {
        format!(
            "| {name} | {cold:.1} | {:.2} | {init:.1} | {:.2} | {:.1} | {warm:.2} | {:.1} MiB | {status} |",
            cold / c.hello_ms,
            init / c.hello_init_ms,
            cold - init,
            bytes as f64 / 1048576.0
        )
    };
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
