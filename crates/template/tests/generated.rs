//! Property tests: generated templates, hostile ones among them, against
//! real workers. Every template gets an answer (its text or its error) or
//! a refusal that names a limit; nothing panics or hangs, no answer is
//! longer than the output limit, and the pool keeps rendering.

use hookd_template::{EngineLimits, Escape, Limits, PoolError, Renderer, Template, WorkerCommand};
use proptest::prelude::*;
use serde_json::json;
use std::time::Duration;

/// Smaller than the server's, so that many cases run quickly.
fn limits() -> Limits {
    Limits {
        timeout: Duration::from_millis(500),
        memory: 32 * 1024 * 1024,
        engine: EngineLimits {
            fuel: 20_000,
            output: 64 * 1024,
        },
        ..Limits::default()
    }
}

/// Past this a render has hung: far beyond the deadline, so that a loaded
/// machine never fails a render that only ran slow (how fast the deadline
/// ends a render is the `template` benchmark's to measure, not a test's).
const HUNG: Duration = Duration::from_secs(60);

fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("entity.username".to_string()),
        Just("'ab'".to_string()),
        Just("\"a\\nb\"".to_string()),
        Just("s".to_string()),
        Just("missing.deeper".to_string()),
        Just("[1, 2, 3]".to_string()),
        Just("{'k': 'v'}".to_string()),
        prop_oneof![0i64..10, Just(100_000), Just(1_000_000_000_000)].prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} ~ {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} * {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} + {b})")),
            (inner.clone(), filter(), inner.clone())
                .prop_map(|(a, f, b)| format!("({a}|{f}({b}))")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("({a}|replace({b}, {c}))")),
            inner.clone().prop_map(|a| format!("range({a})")),
            inner.prop_map(|a| format!("namespace(s={a}).s")),
        ]
    })
}

fn filter() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "indent",
        "join",
        "truncate",
        "default",
        "batch",
        "center",
        "wordwrap",
        "format",
        "urlencode",
        "tojson",
        "list",
        "unique",
        "length",
    ])
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("text ".to_string()),
        expression().prop_map(|e| format!("{{{{ {e} }}}}")),
        expression().prop_map(|e| format!("{{* {e} *}}")),
        expression().prop_map(|e| format!("{{% set s = {e} %}}")),
        (expression(), expression())
            .prop_map(|(n, e)| format!("{{% for i in range({n}) %}}{{% set s = {e} %}}{{% endfor %}}")),
        (0u32..80).prop_map(|n| format!(
            "{{% macro d(s, n) %}}{{% if n > 0 %}}{{{{ d(s ~ s, n - 1) }}}}{{% endif %}}{{% endmacro %}}{{{{ d('ab', {n}) }}}}"
        )),
        (0u32..80).prop_map(|n| format!(
            "{{% set ns = namespace(s='ab') %}}{{% for i in range({n}) %}}{{% set ns.s = ns.s ~ ns.s %}}{{% endfor %}}{{{{ ns.s|length }}}}"
        )),
        // Syntax gone wrong: every prefix of a tag.
        expression().prop_map(|e| format!("{{{{ {e}")),
    ]
}

fn template() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..5).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_generated_template_is_answered_within_its_limits(source in template()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let renderer = Renderer::new(
            WorkerCommand {
                program: env!("CARGO_BIN_EXE_hookd-template-worker").into(),
                args: Vec::new(),
            },
            limits(),
        );
        let context = json!({"entity": {"username": "bob"}});
        let template = Template { source: source.clone(), escape: Escape::JsonString };
        let rendered = renderer.render(std::slice::from_ref(&template), &context);
        let answer = runtime.block_on(async { tokio::time::timeout(HUNG, rendered).await });
        let Ok(answer) = answer else {
            return Err(TestCaseError::fail(format!("{source}: no answer in {HUNG:?}")));
        };
        match answer {
            Ok(answers) => {
                prop_assert_eq!(answers.len(), 1);
                if let Ok(text) = &answers[0] {
                    prop_assert!(text.len() <= limits().engine.output);
                }
            }
            Err(PoolError::Timeout { .. } | PoolError::Memory { .. }) => {}
            Err(other) => prop_assert!(false, "{source}: {other}"),
        }
        let plain = Template { source: "{{ entity.username }}".into(), escape: Escape::Html };
        let after = runtime.block_on(renderer.render(&[plain], &context)).unwrap();
        prop_assert_eq!(after[0].as_deref().ok(), Some("bob"));
    }

    #[test]
    fn compiling_any_text_never_panics(source in any::<String>()) {
        let _ = hookd_template::compile(&source);
    }
}
