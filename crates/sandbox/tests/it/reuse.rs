//! Hooks with `instance = "reused"`: a kept instance serves its own hook's
//! events and no other's, a call that ends badly drops it, a changed
//! configuration or guest gets new ones, and grants hold as with fresh
//! instances.

use super::*;
use hookd_model::clock::{Clock, SystemClock};

fn counter_hook(instance: InstanceMode, limits: Limits) -> LambdaConfig {
    LambdaConfig {
        instance,
        ..lambda(&["counter"], Capabilities::default(), limits)
    }
}

/// The counter guest's count after one event of `hook_id`.
async fn count(sb: &Sandbox, hook_id: Uuid, lambda: &LambdaConfig) -> u64 {
    let out = sb
        .run_chain(hook_id, lambda, &event(json!({})), &Examples)
        .await;
    let data: Value = serde_json::from_str(out.result.as_ref().unwrap()).unwrap();
    data["calls"].as_u64().unwrap()
}

/// Runs one event that asks the counter to end badly; the chain's failure.
async fn ended_badly(sb: &Sandbox, hook_id: Uuid, lambda: &LambdaConfig, then: &str) -> Failure {
    let out = sb
        .run_chain(hook_id, lambda, &event(json!({"then": then})), &Examples)
        .await;
    out.result.unwrap_err().failure
}

#[tokio::test]
async fn a_kept_instance_serves_its_own_hook_and_no_other() {
    let sb = sandbox(SandboxConfig::default());
    let reused = counter_hook(InstanceMode::Reused, Limits::default());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(count(&sb, a, &reused).await, 1);
    assert_eq!(count(&sb, a, &reused).await, 2);
    assert_eq!(count(&sb, a, &reused).await, 3);
    // The same guest and configuration under another hook: its own state.
    assert_eq!(count(&sb, b, &reused).await, 1);
    assert_eq!(count(&sb, a, &reused).await, 4);
    assert_eq!(sb.idle_instances(), 2);
    // A fresh instance per event keeps nothing, and takes no kept one.
    let per_event = counter_hook(InstanceMode::PerEvent, Limits::default());
    for _ in 0..2 {
        assert_eq!(count(&sb, a, &per_event).await, 1);
    }
    // The step says which it ran on.
    let out = sb.run_chain(b, &reused, &event(json!({})), &Examples).await;
    assert!(out.steps[0].reused);
    sb.forget_hook(a, SystemClock.now_ms());
    assert_eq!(sb.idle_instances(), 1);
    assert_eq!(count(&sb, a, &reused).await, 1);
}

#[tokio::test]
async fn forgetting_a_hook_spares_the_instances_made_after_it_changed() {
    let sb = sandbox(SandboxConfig::default());
    let reused = counter_hook(InstanceMode::Reused, Limits::default());
    let hook = Uuid::new_v4();
    // The news that the hook was created comes after its first events.
    let created = SystemClock.now_ms() - 1;
    assert_eq!(count(&sb, hook, &reused).await, 1);
    sb.forget_hook(hook, created);
    assert_eq!(count(&sb, hook, &reused).await, 2, "made after: kept");
    sb.forget_hook(hook, SystemClock.now_ms());
    assert_eq!(sb.idle_instances(), 0);
    assert_eq!(count(&sb, hook, &reused).await, 1, "made before: dropped");
}

#[tokio::test]
async fn a_trap_a_timeout_and_a_memory_kill_each_drop_the_instance() {
    let sb = sandbox(SandboxConfig::default());
    let limits = Limits {
        memory: Some(16 << 20),
        timeout_ms: Some(300),
        fuel: None,
    };
    let reused = counter_hook(InstanceMode::Reused, limits);
    let hook = Uuid::new_v4();
    for (then, stopped) in [
        ("trap", "a trap"),
        ("spin", "a timeout"),
        ("grow", "a memory kill"),
    ] {
        assert_eq!(count(&sb, hook, &reused).await, 1, "before {stopped}");
        assert_eq!(count(&sb, hook, &reused).await, 2, "before {stopped}");
        let failure = ended_badly(&sb, hook, &reused, then).await;
        match (then, &failure) {
            ("trap", Failure::Trap(_)) | ("spin", Failure::Timeout(300)) => {}
            ("grow", Failure::MemoryLimit(_) | Failure::Trap(_)) => {}
            _ => panic!("{then}: {failure:?}"),
        }
        // The next event runs on a clean instance.
        assert_eq!(count(&sb, hook, &reused).await, 1, "after {stopped}");
        sb.forget_hook(hook, SystemClock.now_ms());
    }
}

#[tokio::test]
async fn a_changed_configuration_or_guest_gets_new_instances() {
    let sb = sandbox(SandboxConfig::default());
    let hook = Uuid::new_v4();
    let reused = counter_hook(InstanceMode::Reused, Limits::default());
    assert_eq!(count(&sb, hook, &reused).await, 1);
    assert_eq!(count(&sb, hook, &reused).await, 2);
    let changed = counter_hook(
        InstanceMode::Reused,
        Limits {
            timeout_ms: Some(4_000),
            ..Limits::default()
        },
    );
    assert_eq!(count(&sb, hook, &changed).await, 1);
    // The older configuration's instance was dropped, not set aside.
    assert_eq!(count(&sb, hook, &reused).await, 1);
    assert_eq!(sb.idle_instances(), 1);
    // Another guest at the same step (a new version under the name, as
    // the store resolves it) makes the counter's instances stale.
    let noop = LambdaConfig {
        instance: InstanceMode::Reused,
        ..lambda(&["noop"], Capabilities::default(), Limits::default())
    };
    let out = sb
        .run_chain(hook, &noop, &event(json!({})), &Examples)
        .await;
    assert!(out.result.is_ok());
    assert_eq!(count(&sb, hook, &reused).await, 1);
}

#[tokio::test]
async fn the_server_bounds_calls_and_idle_instances() {
    let sb = sandbox(SandboxConfig {
        reuse: hookd_sandbox::ReuseLimits {
            max_calls: 2,
            max_idle: 1,
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let reused = counter_hook(InstanceMode::Reused, Limits::default());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(count(&sb, a, &reused).await, 1);
    assert_eq!(count(&sb, a, &reused).await, 2);
    // Two calls served: dropped.
    assert_eq!(count(&sb, a, &reused).await, 1);
    // One idle instance at most: b's is dropped after its call.
    assert_eq!(count(&sb, b, &reused).await, 1);
    assert_eq!(count(&sb, b, &reused).await, 1);
    assert_eq!(sb.idle_instances(), 1);
}

#[tokio::test]
async fn grants_hold_on_a_kept_instance_as_on_a_fresh_one() {
    let sb = sandbox(SandboxConfig {
        ceiling: hookd_sandbox::SandboxCeiling {
            items: CeilingItems {
                env: vec!["CARGO_MANIFEST_DIR".into()],
                ..Default::default()
            },
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let snoop = |instance| LambdaConfig {
        instance,
        ..lambda(
            &["snoop"],
            Capabilities {
                env: vec!["CARGO_MANIFEST_DIR".into()],
                ..Capabilities::default()
            },
            Limits::default(),
        )
    };
    let hook = Uuid::new_v4();
    for instance in [
        InstanceMode::PerEvent,
        InstanceMode::Reused,
        InstanceMode::Reused,
    ] {
        let probe = |data: Value| {
            let lambda = snoop(instance);
            let sb = sb.clone();
            async move {
                let out = sb.run_chain(hook, &lambda, &event(data), &Examples).await;
                let result: Value = serde_json::from_str(out.result.as_ref().unwrap()).unwrap();
                (result, out.audit)
            }
        };
        let (granted, _) = probe(json!({"probe": "env", "name": "CARGO_MANIFEST_DIR"})).await;
        assert_eq!(granted["ok"], true, "{instance:?}: {granted}");
        let (other, _) = probe(json!({"probe": "env", "name": "PATH"})).await;
        assert_eq!(other["ok"], false, "{instance:?}: {other}");
        let (http, audit) = probe(json!({"probe": "http", "url": "http://127.0.0.1:9/"})).await;
        assert_eq!(http["ok"], false, "{instance:?}: {http}");
        assert_eq!(audit.len(), 1, "{instance:?}: {audit:?}");
        assert_eq!(audit[0].verdict, Verdict::Denied);
    }
}

#[tokio::test]
async fn idle_instances_are_bounded_by_their_memory_together() {
    // What one counter instance holds, measured rather than assumed.
    let probe = sandbox(SandboxConfig::default());
    let guest = probe.prepare(&bytes("counter")).unwrap();
    let reused = counter_hook(InstanceMode::Reused, Limits::default());
    let out = probe
        .invoke(
            &guest,
            &probe.grant(&reused, guest.report()),
            hookd_sandbox::Invocation {
                hook_id: Uuid::nil(),
                guest_name: "counter",
                event_id: Uuid::nil(),
                source: "crud",
                event: "consumers",
                data: "{}".into(),
                instance: hookd_sandbox::Instance::Fresh,
            },
        )
        .await;
    let one = out.peak_memory;
    assert!(one > 0);
    // Room for two of them, not three.
    let sb = sandbox(SandboxConfig {
        reuse: hookd_sandbox::ReuseLimits {
            max_idle_memory: 2 * one + one / 2,
            ..Default::default()
        },
        ..SandboxConfig::default()
    });
    let hooks = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
    for hook in hooks {
        assert_eq!(count(&sb, hook, &reused).await, 1);
    }
    assert_eq!(sb.idle_instances(), 2);
    assert_eq!(count(&sb, hooks[0], &reused).await, 2);
    assert_eq!(
        count(&sb, hooks[2], &reused).await,
        1,
        "the third was dropped"
    );
}
