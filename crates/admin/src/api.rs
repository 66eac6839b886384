//! Routes registered together with their documentation: every route of
//! the Admin API is added through [`Api::route`], which takes the axum
//! method router and the description of each of its operations, so the
//! OpenAPI document (`GET /openapi.json`) is generated from the same
//! registrations that build the router. A test checks both ways that the
//! methods each path answers are exactly the documented ones.

use crate::AdminState;
use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;

/// What an operation answers on success.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// A JSON body of this component schema (`None`: any JSON).
    Json(u16, Option<String>),
    /// No body.
    Empty(u16),
    /// Bytes of this media type.
    Bytes(&'static str),
    /// Text of this media type.
    Text(&'static str),
}

/// One documented operation.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub method: Method,
    pub path: String,
    pub summary: String,
    /// Component schema of the JSON request body, if it takes one.
    pub body: Option<String>,
    pub answer: Answer,
}

/// The description of an operation, before it is bound to a path.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    method: Method,
    summary: String,
    body: Option<String>,
    answer: Answer,
}

/// Describes an operation answering 200 with any JSON; refine with the
/// builder methods.
pub(crate) fn doc(method: Method, summary: impl Into<String>) -> Doc {
    Doc {
        method,
        summary: summary.into(),
        body: None,
        answer: Answer::Json(200, None),
    }
}

impl Doc {
    /// Takes a JSON body of this component schema.
    pub fn body(mut self, schema: impl Into<String>) -> Self {
        self.body = Some(schema.into());
        self
    }

    /// Answers this status with a JSON body of this component schema.
    pub fn json(mut self, status: u16, schema: impl Into<String>) -> Self {
        self.answer = Answer::Json(status, Some(schema.into()));
        self
    }

    /// Answers this status with no body.
    pub fn empty(mut self, status: u16) -> Self {
        self.answer = Answer::Empty(status);
        self
    }

    /// Answers bytes of this media type.
    pub fn bytes(mut self, media_type: &'static str) -> Self {
        self.answer = Answer::Bytes(media_type);
        self
    }

    /// Answers text of this media type.
    pub fn text(mut self, media_type: &'static str) -> Self {
        self.answer = Answer::Text(media_type);
        self
    }
}

/// Routes and their documentation, built together.
pub(crate) struct Api {
    router: Router<AdminState>,
    ops: Vec<Op>,
}

impl Api {
    pub fn new() -> Self {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a route and the documentation of each method it answers.
    pub fn route(
        mut self,
        path: &str,
        methods: MethodRouter<AdminState>,
        docs: impl IntoIterator<Item = Doc>,
    ) -> Self {
        self.router = self.router.route(path, methods);
        self.ops.extend(docs.into_iter().map(|d| Op {
            method: d.method,
            path: path.to_string(),
            summary: d.summary,
            body: d.body,
            answer: d.answer,
        }));
        self
    }

    /// Adds everything of another `Api`.
    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.ops.extend(other.ops);
        self
    }

    /// The router and the documented operations.
    pub fn into_parts(self) -> (Router<AdminState>, Vec<Op>) {
        (self.router, self.ops)
    }
}
