//! Conditions: a hook's minijinja expression over the event data, which
//! decides whether the hook takes the event. A condition is admin input
//! like a template and is boxed the same way: compiled in the server only
//! to check it at save ([`compile_condition`]), evaluated in the worker
//! processes ([`Conditions`]) in an environment configured as the
//! templates' (the same context, undefined values, filters and their caps,
//! fuel), with the worker's memory limit and the pool's deadline around
//! it. An expression prints nothing: only its truthiness, as minijinja
//! defines it, leaves the worker.

use crate::engine::{self, EngineLimits, Failure, Kept};
use minijinja::{AutoEscape, Environment, Expression, Value};
use std::collections::HashMap;

/// The longest condition, in bytes. An expression over event data takes
/// a few dozen; the bound keeps one from filling what a worker keeps
/// compiled.
pub const MAX_CONDITION: usize = 16 * 1024;

/// Compiles `source` as an expression without evaluating it: a syntax and
/// size check, cheap and bounded (minijinja's parser limits nesting), so
/// it runs in the server.
pub fn compile_condition(source: &str) -> Result<(), String> {
    if source.len() > MAX_CONDITION {
        return Err(format!("longer than {MAX_CONDITION} bytes"));
    }
    Environment::new()
        .compile_expression(source)
        .map(drop)
        .map_err(|e| engine::describe(&e))
}

/// The environment conditions are evaluated in: the templates', within
/// the same limits. Nothing is printed, so nothing is escaped.
pub(crate) fn environment(limits: EngineLimits) -> Environment<'static> {
    engine::environment(AutoEscape::None, limits)
}

/// Evaluates conditions in one [`environment`], keeping the expressions it
/// compiled (as [`crate::Engine`] keeps templates) so that a hook's
/// condition is compiled once per worker, not at every event.
pub(crate) struct Conditions<'env> {
    env: &'env Environment<'static>,
    /// Compiled expressions by the digest of their source.
    compiled: HashMap<String, Expression<'env, 'static>>,
    kept: Kept<String>,
}

impl<'env> Conditions<'env> {
    /// Conditions evaluated in `env`.
    pub(crate) fn new(env: &'env Environment<'static>) -> Self {
        Conditions {
            env,
            compiled: HashMap::new(),
            kept: Kept::default(),
        }
    }

    /// Whether `source` holds for `ctx`. An error (a syntax error, an
    /// invalid operation, fuel, a filter's cap) is a failure, which the
    /// caller counts as false.
    pub(crate) fn evaluate(&mut self, source: &str, ctx: &Value) -> Result<bool, Failure> {
        let expression = self.compiled(source)?;
        expression
            .eval(ctx)
            .map(|value| value.is_true())
            .map_err(|e| engine::failure_of(&e))
    }

    /// The compiled expression of `source`, compiling it unless it is
    /// kept, and letting the least recently used go when more are kept
    /// than [`Kept`] allows.
    fn compiled(&mut self, source: &str) -> Result<&Expression<'env, 'static>, Failure> {
        let key = engine::digest(source);
        if !self.kept.touch(&key) {
            self.kept.compilations += 1;
            let expression = self
                .env
                .compile_expression_owned(source.to_string())
                .map_err(|e| engine::failure_of(&e))?;
            self.compiled.insert(key.clone(), expression);
            for gone in self.kept.insert(key.clone(), source.len()) {
                self.compiled.remove(&gone);
            }
        }
        self.compiled.get(&key).ok_or_else(|| Failure {
            message: "the compiled condition was let go".into(),
            over_budget: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: EngineLimits = EngineLimits {
        fuel: 100_000,
        output: 1024 * 1024,
    };

    fn ctx() -> Value {
        Value::from_serialize(json!({
            "operation": "create", "entity": {"username": "alice", "tags": [], "age": 0},
            "event": "consumers", "source": "crud"
        }))
    }

    fn holds(source: &str) -> Result<bool, Failure> {
        let env = environment(LIMITS);
        Conditions::new(&env).evaluate(source, &ctx())
    }

    #[test]
    fn a_condition_compiles_as_an_expression_only() {
        assert!(compile_condition("entity.username is startingwith 'a'").is_ok());
        assert!(compile_condition("operation == 'create' and source == 'crud'").is_ok());
        assert_eq!(
            compile_condition("entity.username ==").unwrap_err(),
            "syntax error: unexpected end of input, expected expression (line 1)"
        );
        // A template is not an expression.
        assert!(compile_condition("{{ entity.username }}").is_err());
        assert!(compile_condition("x %}{% for i in range(9) %}").is_err());
        assert!(compile_condition("").is_err());
    }

    #[test]
    fn a_condition_longer_than_allowed_is_refused() {
        let long = format!("'{}'", "a".repeat(MAX_CONDITION));
        assert_eq!(
            compile_condition(&long).unwrap_err(),
            format!("longer than {MAX_CONDITION} bytes")
        );
        let longest = format!("'{}'", "a".repeat(MAX_CONDITION - 2));
        assert!(compile_condition(&longest).is_ok());
    }

    #[test]
    fn truthiness_is_minijinjas() {
        for (source, expected) in [
            ("entity.username is startingwith 'a'", true),
            ("entity.username is startingwith 'b'", false),
            ("event == 'consumers' and source == 'crud'", true),
            ("entity.username", true),
            ("entity.tags", false),
            ("entity.age", false),
            ("entity.missing", false),
            ("old_entity.username", false),
            ("none", false),
            ("''", false),
            ("[0]", true),
        ] {
            assert_eq!(holds(source), Ok(expected), "{source}");
        }
    }

    #[test]
    fn errors_and_limits_are_failures() {
        let failure = holds("entity.username + 1").unwrap_err();
        assert!(
            failure.message.starts_with("invalid operation"),
            "{failure}"
        );
        assert!(!failure.over_budget);
        assert!(!holds("entity.username ==").unwrap_err().over_budget);
        let starved = environment(EngineLimits { fuel: 5, ..LIMITS });
        let failure = Conditions::new(&starved)
            .evaluate(
                "entity.age + entity.age + entity.age + entity.age > 0",
                &ctx(),
            )
            .unwrap_err();
        assert!(failure.over_budget, "{failure}");
        assert!(failure.message.contains("fuel"), "{failure}");
        let failure = holds("'a\\nb'|indent(1000000000000)").unwrap_err();
        assert!(failure.over_budget, "{failure}");
    }

    #[test]
    fn a_condition_evaluated_again_is_not_compiled_again() {
        let env = environment(LIMITS);
        let mut conditions = Conditions::new(&env);
        for _ in 0..3 {
            assert_eq!(
                conditions.evaluate("entity.username == 'alice'", &ctx()),
                Ok(true)
            );
        }
        assert_eq!(conditions.kept.compilations, 1);
        // One that does not compile is not kept, and fails each time.
        for _ in 0..2 {
            assert!(conditions.evaluate("entity ==", &ctx()).is_err());
        }
        assert_eq!(conditions.kept.compilations, 3);
        assert_eq!(conditions.compiled.len(), 1);
    }
}
