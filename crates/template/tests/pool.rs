//! The box against hostile templates, with real worker processes.

use hookd_template::{Escape, Failure, Limits, PoolError, Renderer, Template, WorkerCommand};
use serde_json::json;
use std::time::{Duration, Instant};

/// The server's limits, but a second to render: a test that runs into
/// the deadline ends sooner.
fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

fn renderer(limits: Limits) -> Renderer {
    Renderer::new(
        WorkerCommand {
            program: env!("CARGO_BIN_EXE_hookd-template-worker").into(),
            args: Vec::new(),
        },
        limits,
    )
}

fn template(source: &str) -> Template {
    Template {
        source: source.to_string(),
        escape: Escape::Html,
    }
}

async fn render_one(
    renderer: &Renderer,
    source: &str,
) -> Result<Result<String, Failure>, PoolError> {
    let context = json!({"entity": {"username": "bob"}, "event": "consumers", "source": "crud"});
    let mut answers = renderer.render(&[template(source)], &context).await?;
    Ok(answers.remove(0))
}

/// After each attack the pool still renders an ordinary template.
async fn still_renders(renderer: &Renderer) {
    let answer = render_one(renderer, "hello {{ entity.username }}")
        .await
        .unwrap();
    assert_eq!(answer.unwrap(), "hello bob");
}

#[tokio::test]
async fn renders_each_template_with_the_context() {
    let renderer = renderer(limits());
    let context = json!({"entity": {"username": "<b>"}});
    let answers = renderer
        .render(
            &[
                template("{{ entity.username }}"),
                Template {
                    source: "{{ entity.username }}".into(),
                    escape: Escape::None,
                },
                template("{{ oops"),
            ],
            &context,
        )
        .await
        .unwrap();
    assert_eq!(answers[0].as_deref(), Ok("&lt;b&gt;"));
    assert_eq!(answers[1].as_deref(), Ok("<b>"));
    let failure = answers[2].as_ref().unwrap_err();
    assert!(failure.message.starts_with("syntax error"), "{failure}");
    assert!(!failure.over_budget);
}

#[tokio::test]
async fn a_huge_indent_is_refused_by_the_filter() {
    let renderer = renderer(limits());
    let answer = render_one(&renderer, r#"{{ "a\nb"|indent(1000000000000) }}"#)
        .await
        .unwrap();
    let failure = answer.unwrap_err();
    assert_eq!(
        failure.message,
        "invalid operation: indent would make a string longer than the output limit (1048576 bytes) (line 1)"
    );
    assert!(failure.over_budget);
    still_renders(&renderer).await;
}

#[tokio::test]
async fn a_doubling_macro_runs_out_of_memory_alone() {
    let renderer = renderer(limits());
    let doubling = "{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ d('ab', 60) }}";
    let err = render_one(&renderer, doubling).await.unwrap_err();
    assert!(
        matches!(err, PoolError::Memory { limit } if limit == limits().memory),
        "{err}"
    );
    still_renders(&renderer).await;
}

#[tokio::test]
async fn a_namespace_that_doubles_runs_out_of_memory_alone() {
    let renderer = renderer(limits());
    let doubling = "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}";
    let err = render_one(&renderer, doubling).await.unwrap_err();
    assert!(matches!(err, PoolError::Memory { .. }), "{err}");
    still_renders(&renderer).await;
}

#[tokio::test]
async fn a_slow_template_is_stopped_at_the_deadline() {
    let renderer = renderer(limits());
    // Each repetition (15 MB) fits the memory and the fuel; together they
    // take minutes.
    let slow = "{% for i in range(10000) %}{% set x = entity.username * 5000000 %}{% endfor %}";
    let started = Instant::now();
    let err = render_one(&renderer, slow).await.unwrap_err();
    assert!(matches!(err, PoolError::Timeout { .. }), "{err}");
    assert!(
        started.elapsed() < limits().timeout * 2,
        "{:?}",
        started.elapsed()
    );
    still_renders(&renderer).await;
}

#[tokio::test]
async fn a_render_waits_for_a_worker_at_most_the_queue_timeout() {
    let renderer = renderer(Limits {
        workers: 1,
        queue_timeout: Duration::from_millis(200),
        ..limits()
    });
    let slow = "{% for i in range(10000) %}{% set x = entity.username * 5000000 %}{% endfor %}";
    let holder = renderer.clone();
    let busy = tokio::spawn(async move { render_one(&holder, slow).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = render_one(&renderer, "x").await.unwrap_err();
    assert!(matches!(err, PoolError::Busy { .. }), "{err}");
    drop(busy.await);
    still_renders(&renderer).await;
}

#[tokio::test]
async fn conditions_are_evaluated_in_the_workers() {
    let renderer = renderer(limits());
    let context = json!({"entity": {"username": "bob"}, "event": "consumers", "source": "crud"});
    let evaluate = async |condition: &str| renderer.evaluate(condition, &context).await;
    assert_eq!(
        evaluate("entity.username == 'bob'").await.unwrap(),
        Ok(true)
    );
    assert_eq!(
        evaluate("entity.username is startingwith 'a'")
            .await
            .unwrap(),
        Ok(false)
    );
    let failure = evaluate("entity.username + 1").await.unwrap().unwrap_err();
    assert!(
        failure.message.starts_with("invalid operation"),
        "{failure}"
    );
    // Two 60 MB strings joined do not fit the worker's 64 MiB.
    let err = evaluate("entity.username * 20000000 ~ entity.username * 20000000 != ''")
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::Memory { .. }), "{err}");
    assert_eq!(evaluate("source == 'crud'").await.unwrap(), Ok(true));
    still_renders(&renderer).await;
}
