//! The overview: the queue, the last hour's attempts as a chart, the hooks
//! failing now and the latest denials, from `GET /status` and `GET
//! /audit`.

use crate::page::{Failure, Reply};
use crate::viewer::Viewer;
use crate::{Console, at};
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};

/// The overview, the console's first page.
pub(super) fn routes() -> Router<Console> {
    Router::new().route(&at(""), get(show))
}

/// Failing hooks the overview names at most.
const FAILING_SHOWN: usize = 20;

/// The chart's drawing area, in SVG units.
const CHART_HEIGHT: u64 = 100;
const BAR_WIDTH: u64 = 8;
const BAR_STEP: u64 = 10;

/// One minute's bar: delivered at the bottom, failed stacked on top. Both
/// colour and position tell them apart, and each bar's title says the
/// figures in words.
#[derive(Serialize)]
struct Bar {
    x: u64,
    ok_y: u64,
    ok_height: u64,
    failed_y: u64,
    failed_height: u64,
    title: String,
}

fn bars(minutes: &[Value]) -> (Vec<Bar>, u64, u64) {
    let count = |m: &Value, key: &str| m[key].as_u64().unwrap_or(0);
    let highest = minutes
        .iter()
        .map(|m| count(m, "ok") + count(m, "failed"))
        .max()
        .unwrap_or(0)
        .max(1);
    let scaled = |n: u64| (n * CHART_HEIGHT).div_ceil(highest);
    let (mut ok_total, mut failed_total) = (0, 0);
    let bars = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (ok, failed) = (count(m, "ok"), count(m, "failed"));
            ok_total += ok;
            failed_total += failed;
            let ok_height = scaled(ok);
            let failed_height = scaled(failed).min(CHART_HEIGHT - ok_height.min(CHART_HEIGHT));
            let minute = m["start"].as_i64().unwrap_or(0);
            Bar {
                x: i as u64 * BAR_STEP,
                ok_y: CHART_HEIGHT - ok_height,
                ok_height,
                failed_y: CHART_HEIGHT - ok_height - failed_height,
                failed_height,
                title: format!(
                    "{} UTC: {ok} delivered, {failed} failed",
                    clock_minute(minute)
                ),
            }
        })
        .collect();
    (bars, ok_total, failed_total)
}

/// `HH:MM` of a unix time.
fn clock_minute(seconds: i64) -> String {
    let of_day = seconds.rem_euclid(86_400);
    format!("{:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// `GET /console`.
async fn show(viewer: Viewer) -> Result<Reply, Failure> {
    let status = viewer.get("/status").await?;
    let minutes = status["deliveries"]["last_hour"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (bars, ok, failed) = bars(&minutes);
    let attempts = ok + failed;
    let mut failing = Vec::new();
    for f in status["failing_hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .take(FAILING_SHOWN)
    {
        let id = f["hook"].as_str().unwrap_or_default();
        let hook = viewer
            .get(&format!("/event-hooks/{}", super::encode(id)))
            .await
            .unwrap_or(Value::Null);
        failing.push(json!({"failing": f, "hook": hook}));
    }
    let denials = viewer.get("/audit?verdict=denied&size=10").await?;
    viewer.show(
        "overview.html",
        "overview",
        json!({
            "title": "Overview",
            "status": status,
            "bars": bars,
            "chart": {"width": minutes.len() as u64 * BAR_STEP, "height": CHART_HEIGHT, "bar_width": BAR_WIDTH},
            "hour": {
                "ok": ok,
                "failed": failed,
                "failure_rate": if attempts == 0 { 0.0 } else { (failed as f64 * 1000.0 / attempts as f64).round() / 10.0 },
            },
            "failing": failing,
            "failing_more": status["failing_hooks"].as_array().map_or(0, |a| a.len().saturating_sub(FAILING_SHOWN)),
            "denials": denials["data"],
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fit_the_chart_and_say_their_figures() {
        let minutes = vec![
            json!({"start": 3600 * 7 + 60 * 5, "ok": 30, "failed": 10}),
            json!({"start": 3600 * 7 + 60 * 6, "ok": 0, "failed": 0}),
            json!({"start": 3600 * 7 + 60 * 7, "ok": 0, "failed": 3}),
        ];
        let (bars, ok, failed) = bars(&minutes);
        assert_eq!((ok, failed), (30, 13));
        assert_eq!(bars[0].ok_height + bars[0].failed_height, CHART_HEIGHT);
        assert_eq!(bars[0].failed_y, 0);
        assert_eq!(bars[1].ok_height + bars[1].failed_height, 0);
        assert_eq!(bars[2].x, 2 * BAR_STEP);
        assert_eq!(bars[0].title, "07:05 UTC: 30 delivered, 10 failed");
        assert!(
            bars.iter()
                .all(|b| b.failed_y + b.failed_height <= CHART_HEIGHT)
        );
    }
}
