//! What a webhook-custom render costs through the box (a request to a
//! `hookd template-worker` process and its answer) against the same render
//! in the server's own process, for Kong's typical template on a crud
//! event. One render at a time; the box's figure includes framing, JSON
//! both ways and the pipe round trip.

use clap::Parser;
use hookd_bench::report::{Table, ms, ratio};
use hookd_bench::{Summary, load_average, locate_hookd};
use hookd_template::{Context, Engine, Escape, Limits, Renderer, Template, WorkerCommand};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "webhook-custom renders per second: in a worker process against in-process")]
struct Args {
    /// Measured renders per run.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    iterations: usize,
    /// Renders before each measured run, not counted.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
}

/// Kong's example body with the username and operation, as JSON.
const BODY: &str =
    r#"{"text": "Admin account `{{ entity.username }}` {{ operation }}d; id {{ entity.id }}"}"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let context = json!({
        "operation": "create", "source": "crud", "event": "consumers",
        "entity": {"id": "8a3e6b0c-5f21-4c7e-9a55-2b0f6c1d9e47", "username": "alice",
                   "custom_id": null, "tags": ["team-a"], "created_at": 1_764_230_400},
    });
    let template = Template {
        source: BODY.to_string(),
        escape: Escape::JsonString,
    };
    let limits = Limits::default();

    let mut engine = Engine::new(limits.engine);
    let in_process = measure(&args, || {
        // The server would convert the event once per render, as the worker does.
        let ctx = Context::from_serialize(&context);
        engine
            .render(&template.source, template.escape, &ctx)
            .is_ok()
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let renderer = Renderer::new(
        WorkerCommand {
            program: locate_hookd()?,
            args: vec!["template-worker".into()],
        },
        limits,
    );
    let boxed = measure(&args, || {
        runtime
            .block_on(renderer.render(std::slice::from_ref(&template), &context))
            .is_ok_and(|answers| answers[0].is_ok())
    });

    let mut table = Table::new(&["render", "per second", "p50", "p99"]);
    for (name, s) in [("in-process", in_process), ("worker process", boxed)] {
        table.row(vec![
            name.to_string(),
            format!("{:.0}", s.rate),
            ms(s.p50),
            ms(s.p99),
        ]);
    }
    println!("{table}");
    println!(
        "the box renders at {} of in-process; load average {}",
        ratio(boxed.rate / in_process.rate),
        load_average()
    );
    Ok(())
}

fn measure(args: &Args, mut render: impl FnMut() -> bool) -> Summary {
    for _ in 0..args.warmup {
        assert!(render(), "a warm-up render failed");
    }
    let mut latencies = Vec::with_capacity(args.iterations);
    let started = Instant::now();
    for _ in 0..args.iterations {
        let one = Instant::now();
        assert!(render(), "a render failed");
        latencies.push(one.elapsed());
    }
    Summary::new(
        args.iterations,
        started.elapsed().max(Duration::from_nanos(1)),
        latencies,
    )
}
